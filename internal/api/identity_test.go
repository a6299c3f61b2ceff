package api_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The email code proves the email address alone: staff see the phone typed next to it as
// unproven and confirm it; other roles never see identifiers. Staff confirmation also verifies
// a request waiting for identity.
func (s *stack) testConfirmIdentifiers(t *testing.T) {
	addr := email(t)
	const phone = "+4915112340007"
	id := s.submit(t, map[string]any{"type": "erasure", "subject": map[string]any{"email": addr, "phone": phone}})
	s.await(t, "salon", id, status("identity_pending"))
	code := s.sendCode(t, "", addr, id)
	r := s.call(t, "", "POST", "/v1/requests/"+id+"/verify", tok("salon", "intake"), map[string]any{"code": code})
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.NotContains(t, r.json(t), "identifiers", "the intake role sees no identifiers")

	st := s.await(t, "salon", id, status("pending_approval"))
	require.Equal(t, []any{
		map[string]any{"name": "email", "value": addr, "proof": st["identifiers"].([]any)[0].(map[string]any)["proof"]},
		map[string]any{"name": "phone", "value": phone},
	}, st["identifiers"])
	assert.Equal(t, "email_code", st["identifiers"].([]any)[0].(map[string]any)["proof"].(map[string]any)["method"])

	confirm := func(role string, body any) response {
		return s.call(t, "", "POST", "/v1/requests/"+id+"/confirm", tok("salon", role), body)
	}
	assert.Equal(t, 403, confirm("intake", map[string]any{"identifiers": []string{"phone"}}).status)
	r = confirm("support", map[string]any{"identifiers": []string{"customer_id"}})
	assert.Equal(t, 422, r.status, "an identifier the subject never gave: %s", r.body)
	assert.Equal(t, 400, confirm("support", map[string]any{"identifiers": []string{}}).status)
	r = confirm("support", map[string]any{"identifiers": []string{"phone"}, "actor": "sam"})
	require.Equal(t, 200, r.status, "%s", r.body)
	proof := r.json(t)["identifiers"].([]any)[1].(map[string]any)["proof"].(map[string]any)
	assert.Equal(t, "staff", proof["method"])
	assert.Equal(t, "sam (api:salon/support)", proof["actor"])

	// Without an email there is no code: staff who checked the phone verify the request.
	other := s.submit(t, map[string]any{"type": "access", "subject": map[string]any{"phone": "+4915112340008"}})
	s.await(t, "salon", other, status("identity_pending"))
	r = s.call(t, "", "POST", "/v1/requests/"+other+"/confirm", tok("salon", "dpo"), map[string]any{"identifiers": []string{"phone"}})
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.NotEmpty(t, r.json(t)["identity_verified_at"])
	s.await(t, "salon", other, status("completed"))
}
