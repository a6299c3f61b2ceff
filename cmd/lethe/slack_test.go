package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// lethe slack click signs a click with the tenant's signing secret from the configuration and
// posts it to the running server: the pending erasure is approved as the Slack user and runs.
func TestSlackClickApprovesAPendingRequest(t *testing.T) {
	s := teststack.New(t, teststack.Options{Name: "cli-slack", Tenants: teststack.SlackSalon, Slack: true, Listen: true})
	s.RunAll()
	s.Serve(s.Handler())
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: demo.ClearCustomerEmail})
	// Staff click once the approval message is there.
	require.Eventually(t, func() bool {
		for _, m := range s.Slack.Messages() {
			if strings.Contains(string(m.Blocks), id) {
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "the approval message is posted")
	env := map[string]string{"LETHE_CONFIG": s.CfgFile}
	for k, v := range s.Env {
		env[k] = v
	}

	_, stderr, code := runLethe(t, env, "slack", "click", id, "deny")
	if code != 1 || !strings.Contains(stderr, "a denial needs --reason") {
		t.Fatalf("deny without a reason: exit %d, stderr %q", code, stderr)
	}
	out, stderr, code := runLethe(t, env, "slack", "click", id, "approve")
	if code != 0 {
		t.Fatalf("slack click approve: exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(out, "as Slack user UAPPROVER") {
		t.Errorf("stdout %q does not name the approver taken from the configuration", out)
	}
	st := s.Await(id)
	if st.Status != domain.StatusCompleted || st.ApprovedBy != "slack:UAPPROVER" {
		t.Errorf("after the click: status %s, approved by %q; want completed by slack:UAPPROVER", st.Status, st.ApprovedBy)
	}
}
