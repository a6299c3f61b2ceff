package mail_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/mail"
)

// A breach notice as a text keeps the email's wording within the limit: short content whole; long
// content without the recommendations first, then with the longest field cut, the contact point
// and reference whole; the same notice the same text every time.
func TestRenderShortFitsATextAndKeepsTheContactPoint(t *testing.T) {
	n := mail.Notice{Kind: mail.KindBreachNotification, Tenant: mail.Branding{Name: "Salon Example"}, Data: map[string]any{
		"Nature": "A laptop was stolen.", "ContactPoint": "dpo@salon.example", "Consequences": "Phishing.",
		"Measures": "We reset every password.", "Reference": "B-1", "Recommendations": []string{"Change your password."}}}
	short, err := mail.RenderShort(n, 1600, "ContactPoint", "Reference")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(short, "Important: a personal data breach at Salon Example\n\n"), short)
	for _, part := range []string{"A laptop was stolen.", "Phishing.", "We reset every password.", "Change your password.", "dpo@salon.example", "B-1"} {
		assert.Contains(t, short, part)
	}
	assert.NotContains(t, short, "Hello", "no greeting")

	n.Data["Nature"] = strings.Repeat("The intruder copied the bookings table. ", 60)
	long, err := mail.RenderShort(n, 1600, "ContactPoint", "Reference")
	require.NoError(t, err)
	assert.LessOrEqual(t, utf8.RuneCountInString(long), 1600)
	assert.Greater(t, utf8.RuneCountInString(long), 1500, "cut no more than needed")
	assert.NotContains(t, long, "Change your password.", "the list goes first")
	assert.Contains(t, long, "…")
	assert.Contains(t, long, "dpo@salon.example")
	assert.Contains(t, long, "Phishing.")
	again, err := mail.RenderShort(n, 1600, "ContactPoint", "Reference")
	require.NoError(t, err)
	assert.Equal(t, long, again)
	assert.Equal(t, strings.Repeat("The intruder copied the bookings table. ", 60), n.Data["Nature"], "the caller's data is left as it was")

	n.Data["ContactPoint"] = strings.Repeat("x", 1700)
	_, err = mail.RenderShort(n, 1600, "ContactPoint", "Reference")
	assert.Error(t, err)
}
