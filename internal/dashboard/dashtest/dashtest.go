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

	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/breaches"
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

// Seed writes n open requests of the salon straight into the read model, due from daysFrom
// days from today on, one a day, for the list's highlighting and paging. Their ids are
// seed-000, seed-001, ... across calls.
func (s *Stack) Seed(n, daysFrom int, status string) {
	s.T.Helper()
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		s.seed(domain.TypeAccess, status, now.AddDate(0, 0, -20), now.AddDate(0, 0, daysFrom+i), now)
	}
}

// SeedHistory writes n completed requests of the salon received over the past twelve weeks,
// of every type, closed after 3 to 40 days, some late: something for the charts to show.
func (s *Stack) SeedHistory(n int) {
	s.T.Helper()
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		received := now.Add(-time.Duration(i)*84*24*time.Hour/time.Duration(n)).AddDate(0, 0, -3)
		closed := received.AddDate(0, 0, 3+(i*7)%38)
		if closed.After(now) {
			closed = now
		}
		typ := domain.RequestTypes[i%len(domain.RequestTypes)]
		s.seed(typ, domain.StatusCompleted, received, received.AddDate(0, 0, 30), closed)
	}
}

func (s *Stack) seed(typ, status string, received, due, updated time.Time) {
	s.T.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("seed-%03d", s.seeded)
	s.seeded++
	day := due.Format(time.DateOnly)
	state, _ := json.Marshal(domain.RequestState{RequestID: id, TenantID: "salon", Type: typ, Status: status, ReceivedAt: received, DueDate: day})
	row := store.RequestRow{ID: id, TenantID: "salon", Type: typ, Status: status, Regime: "gdpr",
		Channel: "kafka", ReceivedAt: received, DueDate: day, State: state, UpdatedAt: updated}
	if err := s.Deps.Store.Requests().Create(ctx, s.Deps.Store.Pool, row); err != nil {
		s.T.Fatalf("seeding: %v", err)
	}
	if err := s.Deps.Store.Requests().Record(ctx, s.Deps.Store.Pool, row); err != nil {
		s.T.Fatalf("seeding: %v", err)
	}
}

// OpenBreach opens a breach of the salon the organisation became aware of ten hours ago, with
// only its nature described, and returns its id.
func (s *Stack) OpenBreach() string {
	s.T.Helper()
	id, err := s.Deps.Breaches().Open(context.Background(), breaches.Opening{
		TenantID: "salon", Title: "Stolen laptop", AwareAt: time.Now().Add(-10 * time.Hour), OpenedBy: "dashtest",
		Affected: []breachclock.Residents{{Jurisdiction: "DE", Count: 120}}, Content: &store.Art33{Nature: "A laptop with client records was stolen"},
	})
	if err != nil {
		s.T.Fatalf("opening a breach: %v", err)
	}
	return id
}
