package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/consent"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/schemas"
)

// A subject withdraws and later grants again, the grant arriving first: the ledger reads back
// both in the order made, the current state is the grant, each change is published as
// lethe.consent.state with the state it leads to, and reading it is audited by reference.
func (s *stack) testConsent(t *testing.T) {
	ctx := context.Background()
	addr := email(t)
	ref := crypto.SubjectHash(signingKey, "salon", addr, "", "")
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	change := func(granted bool, when time.Time) {
		require.NoError(t, s.Deps.Bus.Publish(ctx, bus.TopicConsent, addr, map[string]any{
			"schema": schemas.ConsentChange, "version": 1, "tenant_id": "salon", "subject": map[string]any{"email": addr},
			"purpose": "profiling", "granted": granted, "changed_at": when, "source": "signup_form",
		}))
	}
	change(true, at.Add(30*time.Minute))
	change(false, at)

	path := "/v1/consent?subject=" + strings.ToUpper(addr)
	var body map[string]any
	deadline := time.Now().Add(time.Minute)
	for {
		r := s.call(t, "", "GET", path, tok("salon", "support"), nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		body = r.json(t)
		if len(body["history"].([]any)) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the ledger the intake consumer writes
	}
	assert.NotContains(t, string(mustJSON(t, body)), strings.ToLower(addr), "the answer names the subject by reference only")
	assert.Equal(t, ref, body["subject_ref"])
	h := body["history"].([]any)
	require.Len(t, h, 2)
	assert.Equal(t, false, h[0].(map[string]any)["granted"], "the withdrawal was made first")
	assert.Equal(t, true, h[1].(map[string]any)["granted"])
	cur := body["current"].([]any)
	require.Len(t, cur, 1)
	assert.Equal(t, map[string]any{"purpose": "profiling", "granted": true, "decided_by": "profiling", "source": "signup_form",
		"changed_at": at.Add(30 * time.Minute).Format(time.RFC3339)}, cur[0])

	// The same answer by reference; a subject of another tenant's token is another subject.
	r := s.call(t, "", "GET", "/v1/consent?subject="+ref, tok("salon", "dpo"), nil)
	assert.Len(t, r.json(t)["history"], 2)
	r = s.call(t, "", "GET", "/v1/consent?subject="+addr, tok("spa", "admin"), nil)
	assert.Empty(t, r.json(t)["history"])
	assert.Empty(t, r.json(t)["current"])
	r = s.call(t, "", "GET", "/v1/consent?subject=not-an-address", tok("salon", "admin"), nil)
	assert.Equal(t, 400, r.status, "the document names the forms a subject takes")
	assert.NotContains(t, string(r.body), "not-an-address")
	r = s.call(t, "", "GET", path, tok("salon", "intake"), nil)
	assert.Equal(t, 403, r.status)

	r = s.call(t, "", "GET", "/v1/audit?action=consent.viewed&subject_ref="+ref, tok("salon", "dpo"), nil)
	require.Equal(t, 200, r.status)
	assert.NotEmpty(t, r.json(t)["events"])
	assert.NotContains(t, string(r.body), strings.ToLower(addr))

	// One lethe.consent.state per change, each with the state the ledger derives once it is in.
	var events []consent.Event
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := s.Deps.Bus.Consume(cctx, bus.ConsumerOptions{Group: "probe-consent-" + time.Now().Format("150405.000000"), Topic: bus.TopicEvents},
		func(_ context.Context, m bus.Message) error {
			var e consent.Event
			if json.Unmarshal(m.Value, &e) == nil && e.Schema == schemas.ConsentState && e.SubjectRef == ref {
				require.NoError(t, schemas.ValidateAs(schemas.ConsentState, m.Value))
				assert.NotContains(t, string(m.Value), strings.ToLower(addr))
				events = append(events, e)
				if len(events) == 2 {
					cancel()
				}
			}
			return nil
		})
	if err != nil && !errors.Is(err, context.Canceled) {
		require.NoError(t, err)
	}
	require.Len(t, events, 2, "a lethe.consent.state for each change")
	byChange := map[bool]consent.Event{events[0].Change.Granted: events[0], events[1].Change.Granted: events[1]}
	assert.True(t, byChange[true].Granted, "the grant leads to granted")
	assert.NotEqual(t, byChange[true].ID, byChange[false].ID)
	assert.Equal(t, "profiling", byChange[false].Purpose)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
