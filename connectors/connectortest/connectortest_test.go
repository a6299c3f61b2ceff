package connectortest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/connectortest"
)

// memory is an in-memory connector with every role, so that every check of the suite runs
// here, including those no shipped connector declares yet (notify).
type memory struct {
	mu       sync.Mutex
	people   map[string]connectors.Subject // by email
	applied  map[string]bool
	restrict map[string]bool
	blocked  map[string]bool
}

func (m *memory) Name() string                { return "memory" }
func (m *memory) Check(context.Context) error { return nil }
func (m *memory) Close() error                { return nil }

// once reports whether key was applied before, recording it.
func (m *memory) once(key string) bool {
	done := m.applied[key]
	m.applied[key] = true
	return done
}

func (m *memory) begin(ctx context.Context, t connectors.Task, needsSubject bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if needsSubject && t.Subject.IsZero() {
		return connectors.Permanent(connectors.ErrNoSubject)
	}
	for k := range t.Params {
		switch k {
		case "changes", "lift", "channel", "subject", "body":
		default:
			return connectors.Permanent(errors.New("unknown param"))
		}
	}
	m.mu.Lock()
	return nil
}

func (m *memory) Access(ctx context.Context, t connectors.Task, sink connectors.RecordSink) (connectors.AccessResult, error) {
	if err := m.begin(ctx, t, true); err != nil {
		return connectors.AccessResult{}, err
	}
	s, ok := m.people[t.Subject.Email]
	m.mu.Unlock()
	if !ok {
		return connectors.AccessResult{}, nil
	}
	if err := sink.BeginTable(ctx, connectors.Table{Name: "people", Columns: []connectors.Column{{Name: "email"}}}); err != nil {
		return connectors.AccessResult{}, err
	}
	if err := sink.WriteRow(ctx, []any{s.Email}); err != nil {
		return connectors.AccessResult{}, err
	}
	return connectors.AccessResult{Tables: 1, Rows: 1}, sink.EndTable(ctx)
}

func (m *memory) Erase(ctx context.Context, t connectors.Task) (connectors.EraseResult, error) {
	if err := m.begin(ctx, t, true); err != nil {
		return connectors.EraseResult{}, err
	}
	defer m.mu.Unlock()
	if m.blocked[t.Subject.Email] {
		return connectors.EraseResult{}, connectors.Blocked([]connectors.Block{{Code: "open_order", Reason: "An order is still open."}})
	}
	if m.once(t.Key) {
		return connectors.EraseResult{AlreadyApplied: true, Subjects: 1}, nil
	}
	delete(m.people, t.Subject.Email)
	return connectors.EraseResult{Subjects: 1}, nil
}

func (m *memory) Rectify(ctx context.Context, t connectors.Task) (connectors.RectifyResult, error) {
	if err := m.begin(ctx, t, true); err != nil {
		return connectors.RectifyResult{}, err
	}
	defer m.mu.Unlock()
	if _, ok := t.Params["changes"]; !ok {
		return connectors.RectifyResult{}, connectors.Permanent(errors.New(`rectify needs param "changes"`))
	}
	return connectors.RectifyResult{AlreadyApplied: m.once(t.Key)}, nil
}

func (m *memory) Restrict(ctx context.Context, t connectors.Task) (connectors.RestrictResult, error) {
	if err := m.begin(ctx, t, true); err != nil {
		return connectors.RestrictResult{}, err
	}
	defer m.mu.Unlock()
	lift, _ := t.Params["lift"].(bool)
	done := m.once(t.Key)
	if !done {
		m.restrict[t.Subject.Email] = !lift
	}
	return connectors.RestrictResult{AlreadyApplied: done, Restricted: m.restrict[t.Subject.Email], Rows: 1}, nil
}

func (m *memory) BlockCheck(ctx context.Context, t connectors.Task) (connectors.BlockResult, error) {
	if err := m.begin(ctx, t, true); err != nil {
		return connectors.BlockResult{}, err
	}
	defer m.mu.Unlock()
	if m.blocked[t.Subject.Email] {
		return connectors.BlockResult{Blocks: []connectors.Block{{Code: "open_order", Reason: "An order is still open."}}}, nil
	}
	return connectors.BlockResult{}, nil
}

func (m *memory) Notify(ctx context.Context, t connectors.Task) (connectors.NotifyResult, error) {
	if err := m.begin(ctx, t, true); err != nil {
		return connectors.NotifyResult{}, err
	}
	defer m.mu.Unlock()
	msg, err := connectors.MessageFromParams(t.Params)
	if err != nil {
		return connectors.NotifyResult{}, err
	}
	return connectors.NotifyResult{AlreadyApplied: m.once(t.Key), Channel: msg.Channel}, nil
}

func (m *memory) Find(ctx context.Context, t connectors.Task, sink connectors.SubjectSink) (connectors.FindResult, error) {
	if err := m.begin(ctx, t, false); err != nil {
		return connectors.FindResult{}, err
	}
	found := make([]connectors.Subject, 0, len(m.people))
	for _, s := range m.people {
		found = append(found, s)
	}
	m.mu.Unlock()
	for _, s := range found {
		if err := sink.WriteSubject(ctx, s); err != nil {
			return connectors.FindResult{}, err
		}
	}
	return connectors.FindResult{Subjects: int64(len(found))}, nil
}

func (m *memory) Purge(ctx context.Context, t connectors.Task) (connectors.PurgeResult, error) {
	if err := m.begin(ctx, t, false); err != nil {
		return connectors.PurgeResult{}, err
	}
	m.mu.Unlock()
	return connectors.PurgeResult{Rows: map[string]int64{}}, nil
}

func TestEveryCheckRuns(t *testing.T) {
	connectortest.Run(t, connectortest.Features{
		Capabilities:   connectors.AllCapabilities,
		InvalidParams:  map[string]any{"no_such_option": true},
		RectifyChanges: map[string]any{"city": "Eastfold"},
		FindParams:     map[string]any{},
	}, func(t *testing.T) connectortest.Fixture {
		m := &memory{people: map[string]connectors.Subject{}, applied: map[string]bool{}, restrict: map[string]bool{}, blocked: map[string]bool{}}
		n := 0
		seed := func(blocked bool) connectors.Subject {
			m.mu.Lock()
			defer m.mu.Unlock()
			n++
			s := connectors.Subject{Email: fmt.Sprintf("person-%d@example.com", n)}
			m.people[s.Email], m.blocked[s.Email] = s, blocked
			return s
		}
		return connectortest.Fixture{
			Connector:   m,
			Seed:        func(*testing.T) connectors.Subject { return seed(false) },
			SeedBlocked: func(*testing.T) connectors.Subject { return seed(true) },
			HasPersonalData: func(t *testing.T, s connectors.Subject) bool {
				m.mu.Lock()
				defer m.mu.Unlock()
				_, ok := m.people[s.Email]
				return ok
			},
		}
	})
}
