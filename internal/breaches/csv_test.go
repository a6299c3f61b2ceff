package breaches_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/store"
)

// For a tenant that sends texts, an upload's row may give only a phone, written as people write
// it: it lists a person told by text, in E.164 form. A phone in national form, or none, is
// refused by line; without texts any empty email is.
func TestUploadListsPhoneOnlyPeopleWhereTheTenantTexts(t *testing.T) {
	upload := "email,phone,name\nana@example.com,+49 30 1234,Ana\n,+44 (7700) 900-123,Ben\n,0044 7700 900124\n"
	rs, err := breaches.ReadCSV(strings.NewReader(upload), true)
	require.NoError(t, err)
	assert.Equal(t, []store.Recipient{{Email: "ana@example.com", Phone: "+49 30 1234", Name: "Ana"},
		{Phone: "+447700900123", Name: "Ben"}, {Phone: "+447700900124"}}, rs)

	_, err = breaches.ReadCSV(strings.NewReader(upload), false)
	var ue *breaches.UploadError
	require.True(t, errors.As(err, &ue), "%v", err)
	assert.Equal(t, []breaches.BadRow{{Line: 3, Problem: "the email is empty, and the tenant sends no texts to reach a phone (set tenants[].sms)"},
		{Line: 4, Problem: "the email is empty, and the tenant sends no texts to reach a phone (set tenants[].sms)"}}, ue.Rows)

	_, err = breaches.ReadCSV(strings.NewReader(",07700 900123\n,\n"), true)
	require.True(t, errors.As(err, &ue), "%v", err)
	require.Len(t, ue.Rows, 2)
	assert.Contains(t, ue.Rows[0].Problem, "not in international form")
	assert.Equal(t, "the email and the phone are empty", ue.Rows[1].Problem)
	assert.NotContains(t, err.Error(), "7700", "no phone number in the error")
}
