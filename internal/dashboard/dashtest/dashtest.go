// Package dashtest runs the dashboard on a whole in-process Lethe for tests (see teststack):
// the salon approving erasures by hand, a second tenant, and a token per role of each.
package dashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// Stack is the test's Lethe with each tenant's tokens by role: Tokens["salon"]["dpo"].
type Stack struct {
	*teststack.Stack
	Tokens map[string]map[string]string
	seeded int
}

// Start builds the stack, runs every part and serves the HTTP surface as lethe dev does.
func Start(t testing.TB) *Stack {
	t.Helper()
	env := map[string]string{}
	tokens := map[string]map[string]string{}
	yaml := map[string]string{}
	for _, tenant := range []string{"salon", "spa"} {
		tokens[tenant] = map[string]string{}
		var b strings.Builder
		for _, role := range config.Roles {
			name := "DASH_TOKEN_" + strings.ToUpper(tenant+"_"+role)
			tokens[tenant][role] = tenant + "-" + role + "-token-" + testenv.Suffix()
			env[name] = tokens[tenant][role]
			b.WriteString("\n      - {role: " + role + ", env: " + name + "}")
		}
		yaml[tenant] = b.String()
	}
	ts := teststack.New(t, teststack.Options{
		Name: "dash", Listen: true, Env: env, MailboxSize: 500,
		Tenants: strings.Replace(teststack.Salon, "policy: {manual_approval: []}", "policy: {manual_approval: [erasure]}\n    tokens:"+yaml["salon"], 1) + `
  - id: spa
    name: Spa Example
    regime: gdpr
    country: FR
    contact_email: privacy@spa.example
    tokens:` + yaml["spa"],
	})
	ts.RunAll()
	ts.Serve(ts.Handler())
	return &Stack{Stack: ts, Tokens: tokens}
}

// AwaitStatus waits until the salon's request id has status.
func (s *Stack) AwaitStatus(id, status string) domain.RequestState {
	s.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		st, err := s.Deps.Requests().Get(ctx, "salon", id)
		if err == nil && st.Status == status {
			return st
		}
		select {
		case <-ctx.Done():
			s.T.Fatalf("request %s never reached %s (last %q, %v)", id, status, st.Status, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Seed writes n requests of the salon straight into the read model, due from daysFrom days
// from today on, one a day, for the list's highlighting and paging. Their ids are seed-000,
// seed-001, ... across calls.
func (s *Stack) Seed(n, daysFrom int, status string) {
	s.T.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		due := time.Now().UTC().AddDate(0, 0, daysFrom+i).Format(time.DateOnly)
		id := fmt.Sprintf("seed-%03d", s.seeded)
		s.seeded++
		received := time.Now().UTC().AddDate(0, 0, -20)
		state, _ := json.Marshal(domain.RequestState{RequestID: id, TenantID: "salon", Type: domain.TypeAccess, Status: status, ReceivedAt: received, DueDate: due})
		row := store.RequestRow{ID: id, TenantID: "salon", Type: domain.TypeAccess, Status: status, Regime: "gdpr",
			Channel: "kafka", ReceivedAt: received, DueDate: due, State: state, UpdatedAt: time.Now()}
		if err := s.Deps.Store.Requests().Create(ctx, s.Deps.Store.Pool, row); err != nil {
			s.T.Fatalf("seeding: %v", err)
		}
		if err := s.Deps.Store.Requests().Record(ctx, s.Deps.Store.Pool, row); err != nil {
			s.T.Fatalf("seeding: %v", err)
		}
	}
}
