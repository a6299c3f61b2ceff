package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/testenv"
)

// /v1/breaches on the whole stack: support opens (the same id twice is one breach, another
// tenant cannot take it), the DPO assesses and records the notification, a late close and a
// role without the right are refused, and the register lists the closed breach. Every answer
// is checked against the OpenAPI document.
func (s *stack) testBreaches(t *testing.T) {
	id := "B-" + testenv.Suffix()
	aware := time.Now().Add(-2 * time.Hour).UTC()
	open := map[string]any{"breach_id": id, "title": "Stolen laptop", "aware_at": aware.Format(time.RFC3339),
		"affected": []map[string]any{{"jurisdiction": "DE", "count": 120}}, "content": map[string]any{"nature": "A laptop was stolen"}}
	r := s.call(t, "", http.MethodPost, "/v1/breaches", tok("salon", "support"), open)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "/v1/breaches/"+id, r.header.Get("Location"))
	r = s.call(t, "", http.MethodPost, "/v1/breaches", tok("salon", "dpo"), open)
	assert.Equal(t, http.StatusOK, r.status, "the same id again is the same breach: %s", r.body)
	r = s.call(t, "", http.MethodPost, "/v1/breaches", tok("spa", "admin"), open)
	assert.Equal(t, http.StatusConflict, r.status, "another tenant cannot take the id: %s", r.body)
	future := map[string]any{"title": "x", "aware_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	r = s.call(t, "", http.MethodPost, "/v1/breaches", tok("salon", "support"), future)
	assert.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)

	path := "/v1/breaches/" + id
	r = s.call(t, "", http.MethodGet, path, tok("salon", "dpo"), nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	clocks := r.json(t)["clocks"].([]any)
	first := clocks[0].(map[string]any)
	assert.Equal(t, "gdpr-art33-authority", first["rule"])
	assert.InDelta(t, 70*3600, first["remaining_seconds"], 120)
	assert.Equal(t, http.StatusNotFound, s.call(t, "", http.MethodGet, path, tok("spa", "dpo"), nil).status)

	assess := map[string]any{"risk": "risk", "rationale": "names and bookings"}
	assert.Equal(t, http.StatusForbidden, s.call(t, "", http.MethodPost, path+"/assessment", tok("salon", "support"), assess).status)
	r = s.call(t, "", http.MethodPost, path+"/assessment", tok("salon", "dpo"), map[string]any{"risk": "risk", "rationale": " "})
	assert.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	assert.Equal(t, http.StatusOK, s.call(t, "", http.MethodPost, path+"/assessment", tok("salon", "dpo"), assess).status)
	r = s.call(t, "", http.MethodPost, path+"/content", tok("salon", "support"), map[string]any{"content": map[string]any{"measures": "Remote wipe"}})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.EqualValues(t, 2, r.json(t)["content_version"])

	closing := map[string]any{"reason": "measures complete"}
	r = s.call(t, "", http.MethodPost, path+"/close", tok("salon", "dpo"), closing)
	assert.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	assert.Contains(t, r.json(t)["message"], "gdpr-art33-authority")
	r = s.call(t, "", http.MethodPost, path+"/notifications", tok("salon", "dpo"), map[string]any{"rule": "ca-residents"})
	assert.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	r = s.call(t, "", http.MethodPost, path+"/notifications", tok("salon", "dpo"), map[string]any{"rule": "gdpr-art33-authority", "exemption": "encrypted", "rationale": "AES"})
	assert.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	assert.Contains(t, r.json(t)["message"], "allows no exemption", "Art. 34(3) exempts only from telling the people")
	r = s.call(t, "", http.MethodPost, path+"/notifications", tok("salon", "dpo"), map[string]any{"rule": "gdpr-art33-authority", "exemption": "sleepy"})
	assert.Equal(t, http.StatusBadRequest, r.status, "an unknown ground is refused by the schema: %s", r.body)
	r = s.call(t, "", http.MethodPost, path+"/notifications", tok("salon", "dpo"), map[string]any{"rule": "gdpr-art33-authority", "reference": "BfDI-1"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = s.call(t, "", http.MethodPost, path+"/close", tok("salon", "admin"), closing)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "closed", r.json(t)["status"])
	assert.Equal(t, http.StatusConflict, s.call(t, "", http.MethodPost, path+"/close", tok("salon", "admin"), closing).status)

	r = s.call(t, "", http.MethodGet, "/v1/breaches?status=closed", tok("salon", "support"), nil)
	require.Equal(t, http.StatusOK, r.status)
	list := r.json(t)["breaches"].([]any)
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0].(map[string]any)["id"])
}
