// Package connectortest is the conformance suite every connector passes. A connector's test
// declares what it supports and gives a factory for fresh fixtures:
//
//	func TestConformance(t *testing.T) {
//		connectortest.Run(t, connectortest.Features{Capabilities: myconn.Capabilities, LargeResultRows: 5000},
//			func(t *testing.T) connectortest.Fixture { ... })
//	}
//
// The suite is a table of named checks, one per contract, each a subtest skipped only when a
// capability it needs is not declared. Every capability has at least one check.
package connectortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
)

// Features declares what the connector under test supports.
type Features struct {
	// Capabilities must equal what the connector implements.
	Capabilities []connectors.Capability
	// LargeResultRows, when positive, is the row count of the streaming check (SeedLarge).
	LargeResultRows int
	// InvalidParams, when set, are task params the connector must refuse permanently.
	InvalidParams map[string]any
	// Timeout bounds how promptly a canceled call must return (default 5s).
	Timeout time.Duration
	// RectifyChanges is a valid Params["changes"] for a seeded subject (needed with
	// CapRectify).
	RectifyChanges map[string]any
	// FindParams are criteria that find every seeded subject (needed with CapFind).
	FindParams map[string]any
	// PurgeParams are the params of a purge (optional with CapPurge).
	PurgeParams map[string]any
	// NotifyChannel is the channel the notify check sends on (default email; an SMS
	// connector declares sms).
	NotifyChannel connectors.Channel
}

// Fixture is a fresh connector plus what the suite needs to plant and inspect data.
type Fixture struct {
	Connector connectors.Connector
	// Seed plants a subject with personal data that nothing blocks from erasure.
	Seed func(t *testing.T) connectors.Subject
	// SeedBlocked plants a subject that the connector's block check must report (needed
	// with CapBlockCheck).
	SeedBlocked func(t *testing.T) connectors.Subject
	// SeedLarge plants a subject with at least n records (needed with LargeResultRows).
	SeedLarge func(t *testing.T, n int) connectors.Subject
	// HasPersonalData looks directly in the system, not through the connector.
	HasPersonalData func(t *testing.T, s connectors.Subject) bool
	// Disconnect makes the system unreachable for the rest of the test (optional): calls
	// must then fail with a retryable error.
	Disconnect func(t *testing.T)
}

// check is one named contract of the suite, run only when the connector declares every
// capability it needs.
type check struct {
	Name  string
	Needs []connectors.Capability
	Run   func(t *testing.T, st *suite)
}

// suite is what a check gets: the declared features, fresh fixtures and task keys.
type suite struct {
	features Features
	factory  func(t *testing.T) Fixture
	timeout  time.Duration
	ctx      context.Context

	mu  sync.Mutex
	seq int
}

func (st *suite) has(c connectors.Capability) bool {
	return slices.Contains(st.features.Capabilities, c)
}

// fresh returns a new fixture with what every check needs.
func (st *suite) fresh(t *testing.T) Fixture {
	t.Helper()
	f := st.factory(t)
	if f.Connector == nil || f.Seed == nil || f.HasPersonalData == nil {
		t.Fatal("fixture needs Connector, Seed and HasPersonalData")
	}
	return f
}

// task returns a task under a key no other call of the suite uses.
func (st *suite) task(t *testing.T, action connectors.Capability, s connectors.Subject) connectors.Task {
	st.mu.Lock()
	st.seq++
	n := st.seq
	st.mu.Unlock()
	req := fmt.Sprintf("req-%s-%d", t.Name(), n)
	return connectors.Task{Key: req + "/conformance/" + string(action), RequestID: req, TenantID: "conformance", Subject: s}
}

// Run runs every check that the declared capabilities allow.
func Run(t *testing.T, features Features, factory func(t *testing.T) Fixture) {
	st := &suite{features: features, factory: factory, timeout: features.Timeout, ctx: context.Background()}
	if st.timeout == 0 {
		st.timeout = 5 * time.Second
	}
	for _, c := range checks {
		t.Run(c.Name, func(t *testing.T) {
			for _, need := range c.Needs {
				if !st.has(need) {
					t.Skipf("capability %s not declared", need)
				}
			}
			c.Run(t, st)
		})
	}
}

// checks is the suite, in the order it runs; every capability has at least one.
var checks = []check{
	{"capabilities match", []connectors.Capability{}, func(t *testing.T, st *suite) {
		f := st.factory(t)
		got := connectors.Implemented(f.Connector)
		want := slices.Clone(st.features.Capabilities)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("connector implements %v, features declare %v", got, want)
		}
	}},
	{"erase is idempotent", []connectors.Capability{connectors.CapErase}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		e := f.Connector.(connectors.Eraser)
		s := f.Seed(t)
		if !f.HasPersonalData(t, s) {
			t.Fatal("Seed planted no personal data")
		}
		tk := st.task(t, connectors.CapErase, s)
		first, err := e.Erase(st.ctx, tk)
		if err != nil {
			t.Fatalf("first erase: %v", err)
		}
		if first.AlreadyApplied {
			t.Fatal("first erase reports already applied")
		}
		if f.HasPersonalData(t, s) {
			t.Fatal("personal data remains after erase")
		}
		second, err := e.Erase(st.ctx, tk)
		if err != nil {
			t.Fatalf("second erase with the same key: %v", err)
		}
		if !second.AlreadyApplied {
			t.Fatal("second erase with the same key does not report already applied")
		}
		if second.Subjects != first.Subjects {
			t.Fatalf("second erase reports %d subjects, first %d", second.Subjects, first.Subjects)
		}
		// A new request for an erased subject finds nothing left to do, without error.
		if _, err := e.Erase(st.ctx, st.task(t, connectors.CapErase, s)); err != nil {
			t.Fatalf("erase of an already erased subject under a new key: %v", err)
		}
	}},
	{"access after erase finds no personal data", []connectors.Capability{connectors.CapErase, connectors.CapAccess}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		s := f.Seed(t)
		before := &collector{}
		if _, err := f.Connector.(connectors.Accessor).Access(st.ctx, st.task(t, connectors.CapAccess, s), before); err != nil {
			t.Fatalf("access before erase: %v", err)
		}
		if !before.holds(s) {
			t.Fatal("access before erase did not return the subject's identifiers")
		}
		if _, err := f.Connector.(connectors.Eraser).Erase(st.ctx, st.task(t, connectors.CapErase, s)); err != nil {
			t.Fatalf("erase: %v", err)
		}
		after := &collector{}
		if _, err := f.Connector.(connectors.Accessor).Access(st.ctx, st.task(t, connectors.CapAccess, s), after); err != nil {
			t.Fatalf("access after erase: %v", err)
		}
		if after.holds(s) {
			t.Fatal("access after erase still returns the subject's identifiers")
		}
		if f.HasPersonalData(t, s) {
			t.Fatal("personal data remains after erase")
		}
	}},
	{"block check", []connectors.Capability{connectors.CapBlockCheck}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		if f.SeedBlocked == nil {
			t.Fatal("CapBlockCheck declared but the fixture has no SeedBlocked")
		}
		bc := f.Connector.(connectors.BlockChecker)
		free := f.Seed(t)
		res, err := bc.BlockCheck(st.ctx, st.task(t, connectors.CapBlockCheck, free))
		if err != nil {
			t.Fatalf("block check of an unblocked subject: %v", err)
		}
		if len(res.Blocks) != 0 {
			t.Fatalf("unblocked subject reports blocks %v", res.Blocks)
		}
		blocked := f.SeedBlocked(t)
		res, err = bc.BlockCheck(st.ctx, st.task(t, connectors.CapBlockCheck, blocked))
		if err != nil {
			t.Fatalf("block check of a blocked subject: %v", err)
		}
		if len(res.Blocks) == 0 {
			t.Fatal("blocked subject reports no blocks")
		}
		for _, b := range res.Blocks {
			if b.Code == "" || b.Reason == "" {
				t.Fatalf("block without code or reason: %+v", b)
			}
		}
		if !st.has(connectors.CapErase) {
			return
		}
		_, err = f.Connector.(connectors.Eraser).Erase(st.ctx, st.task(t, connectors.CapErase, blocked))
		if !connectors.IsPermanent(err) {
			t.Fatalf("erase of a blocked subject: want a permanent error, got %v", err)
		}
		if blocks, ok := connectors.BlocksOf(err); !ok || len(blocks) == 0 {
			t.Fatalf("erase of a blocked subject: error carries no blocks: %v", err)
		}
		if !f.HasPersonalData(t, blocked) {
			t.Fatal("refused erase still removed personal data")
		}
	}},
	{"rectify is idempotent", []connectors.Capability{connectors.CapRectify}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		if st.features.RectifyChanges == nil {
			t.Fatal("CapRectify declared but Features has no RectifyChanges")
		}
		r := f.Connector.(connectors.Rectifier)
		tk := st.task(t, connectors.CapRectify, f.Seed(t))
		tk.Params = map[string]any{"changes": st.features.RectifyChanges}
		if first, err := r.Rectify(st.ctx, tk); err != nil || first.AlreadyApplied {
			t.Fatalf("first rectify = %+v, %v", first, err)
		}
		if second, err := r.Rectify(st.ctx, tk); err != nil || !second.AlreadyApplied {
			t.Fatalf("second rectify with the same key = %+v, %v; want already applied", second, err)
		}
		none := st.task(t, connectors.CapRectify, f.Seed(t))
		if _, err := r.Rectify(st.ctx, none); !connectors.IsPermanent(err) {
			t.Fatalf("rectify without changes: want a permanent error, got %v", err)
		}
	}},
	{"restrict and lift", []connectors.Capability{connectors.CapRestrict}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		r := f.Connector.(connectors.Restricter)
		s := f.Seed(t)
		tk := st.task(t, connectors.CapRestrict, s)
		if first, err := r.Restrict(st.ctx, tk); err != nil || first.AlreadyApplied || !first.Restricted {
			t.Fatalf("restrict = %+v, %v", first, err)
		}
		if second, err := r.Restrict(st.ctx, tk); err != nil || !second.AlreadyApplied {
			t.Fatalf("restrict again with the same key = %+v, %v; want already applied", second, err)
		}
		lift := st.task(t, connectors.CapRestrict, s)
		lift.Params = map[string]any{"lift": true}
		if res, err := r.Restrict(st.ctx, lift); err != nil || res.Restricted {
			t.Fatalf("lift = %+v, %v", res, err)
		}
	}},
	{"notify is idempotent", []connectors.Capability{connectors.CapNotify}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		n := f.Connector.(connectors.Notifier)
		tk := st.task(t, connectors.CapNotify, f.Seed(t))
		channel := st.features.NotifyChannel
		if channel == "" {
			channel = connectors.ChannelEmail
		}
		tk.Params = map[string]any{"channel": string(channel), "subject": "Conformance", "body": "A conformance check."}
		if first, err := n.Notify(st.ctx, tk); err != nil || first.AlreadyApplied {
			t.Fatalf("first notify = %+v, %v", first, err)
		}
		if second, err := n.Notify(st.ctx, tk); err != nil || !second.AlreadyApplied {
			t.Fatalf("second notify with the same key = %+v, %v; want already applied, sent once", second, err)
		}
		bad := st.task(t, connectors.CapNotify, f.Seed(t))
		bad.Params = map[string]any{"channel": "pigeon", "body": "x"}
		if _, err := n.Notify(st.ctx, bad); !connectors.IsPermanent(err) {
			t.Fatalf("notify on an unknown channel: want a permanent error, got %v", err)
		}
	}},
	{"find streams the matching subjects", []connectors.Capability{connectors.CapFind}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		if st.features.FindParams == nil {
			t.Fatal("CapFind declared but Features has no FindParams")
		}
		s := f.Seed(t)
		tk := st.task(t, connectors.CapFind, connectors.Subject{})
		tk.Params = st.features.FindParams
		sink := &subjects{}
		res, err := f.Connector.(connectors.Finder).Find(st.ctx, tk, sink)
		if err != nil {
			t.Fatalf("find: %v", err)
		}
		if res.Subjects != int64(len(sink.found)) {
			t.Fatalf("find counts %d subjects, streamed %d", res.Subjects, len(sink.found))
		}
		if !slices.ContainsFunc(sink.found, func(x connectors.Subject) bool { return strings.EqualFold(x.Email, s.Email) }) {
			t.Fatal("find did not stream the seeded subject")
		}
	}},
	{"purge can run again", []connectors.Capability{connectors.CapPurge}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		p := f.Connector.(connectors.Purger)
		for i := range 2 {
			tk := st.task(t, connectors.CapPurge, connectors.Subject{})
			tk.Params = st.features.PurgeParams
			if _, err := p.Purge(st.ctx, tk); err != nil {
				t.Fatalf("purge run %d: %v", i+1, err)
			}
		}
	}},
	{"cancellation stops access", []connectors.Capability{connectors.CapAccess}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		if st.features.LargeResultRows <= 0 || f.SeedLarge == nil {
			t.Skip("LargeResultRows not declared")
		}
		s := f.SeedLarge(t, st.features.LargeResultRows)
		cctx, cancel := context.WithCancel(st.ctx)
		defer cancel()
		sink := &collector{onRow: func(n int) {
			if n == 1 {
				cancel()
			}
		}}
		done := make(chan error, 1)
		go func() {
			_, err := f.Connector.(connectors.Accessor).Access(cctx, st.task(t, connectors.CapAccess, s), sink)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("canceled access: want an error wrapping context.Canceled, got %v", err)
			}
		case <-time.After(st.timeout):
			t.Fatalf("access did not return within %s of cancellation", st.timeout)
		}
		if n := sink.count(); n >= st.features.LargeResultRows {
			t.Fatalf("canceled access still delivered all %d rows", n)
		}

		pre, cancelNow := context.WithCancel(st.ctx)
		cancelNow()
		if _, err := f.Connector.(connectors.Accessor).Access(pre, st.task(t, connectors.CapAccess, s), &collector{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("access with a canceled context: want context.Canceled, got %v", err)
		}
	}},
	{"large results are streamed", []connectors.Capability{connectors.CapAccess}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		if st.features.LargeResultRows <= 0 || f.SeedLarge == nil {
			t.Skip("LargeResultRows not declared")
		}
		n := st.features.LargeResultRows
		s := f.SeedLarge(t, n)
		first := make(chan struct{})
		release := make(chan struct{})
		sink := &collector{onRow: func(i int) {
			if i == 1 {
				close(first)
				<-release
			}
		}}
		done := make(chan error, 1)
		go func() {
			_, err := f.Connector.(connectors.Accessor).Access(st.ctx, st.task(t, connectors.CapAccess, s), sink)
			done <- err
		}()
		// The first row must reach the sink while the call is still running.
		select {
		case <-first:
		case err := <-done:
			t.Fatalf("access returned (%v) before any row reached the sink", err)
		case <-time.After(st.timeout):
			t.Fatal("no row reached the sink")
		}
		select {
		case err := <-done:
			t.Fatalf("access returned (%v) while the sink was still holding the first row", err)
		default:
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("access: %v", err)
		}
		if got := sink.count(); got < n {
			t.Fatalf("sink received %d rows, want at least %d", got, n)
		}
	}},
	{"permanent and retryable errors", []connectors.Capability{}, func(t *testing.T, st *suite) {
		f := st.fresh(t)
		var calls []func(connectors.Task) error
		if st.has(connectors.CapErase) {
			calls = append(calls, func(tk connectors.Task) error {
				_, err := f.Connector.(connectors.Eraser).Erase(st.ctx, tk)
				return err
			})
		}
		if st.has(connectors.CapAccess) {
			calls = append(calls, func(tk connectors.Task) error {
				_, err := f.Connector.(connectors.Accessor).Access(st.ctx, tk, &collector{})
				return err
			})
		}
		if st.has(connectors.CapBlockCheck) {
			calls = append(calls, func(tk connectors.Task) error {
				_, err := f.Connector.(connectors.BlockChecker).BlockCheck(st.ctx, tk)
				return err
			})
		}
		if len(calls) == 0 {
			t.Skip("no subject-level capability declared")
		}
		s := f.Seed(t)
		for i, call := range calls {
			if err := call(st.task(t, "bad", connectors.Subject{})); !connectors.IsPermanent(err) {
				t.Errorf("call %d with an empty subject: want a permanent error, got %v", i, err)
			}
			if st.features.InvalidParams != nil {
				tk := st.task(t, "bad", s)
				tk.Params = st.features.InvalidParams
				if err := call(tk); !connectors.IsPermanent(err) {
					t.Errorf("call %d with invalid params: want a permanent error, got %v", i, err)
				}
			}
		}
		if f.Disconnect == nil {
			return
		}
		f.Disconnect(t)
		for i, call := range calls {
			err := call(st.task(t, "lost", s))
			if err == nil {
				t.Errorf("call %d after disconnect succeeded", i)
			} else if connectors.IsPermanent(err) {
				t.Errorf("call %d after disconnect: want a retryable error, got permanent %v", i, err)
			}
		}
	}},
}

// subjects is a SubjectSink that keeps what it receives.
type subjects struct {
	mu    sync.Mutex
	found []connectors.Subject
}

func (s *subjects) WriteSubject(_ context.Context, sub connectors.Subject) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.found = append(s.found, sub)
	return nil
}

// collector is a RecordSink that keeps every value as text.
type collector struct {
	mu    sync.Mutex
	rows  [][]string
	onRow func(n int)
}

func (c *collector) BeginTable(context.Context, connectors.Table) error { return nil }
func (c *collector) EndTable(context.Context) error                     { return nil }

func (c *collector) WriteRow(_ context.Context, values []any) error {
	row := make([]string, len(values))
	for i, v := range values {
		row[i] = fmt.Sprint(v)
	}
	c.mu.Lock()
	c.rows = append(c.rows, row)
	n := len(c.rows)
	c.mu.Unlock()
	if c.onRow != nil {
		c.onRow(n)
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rows)
}

// holds reports whether any value equals one of the subject's contact identifiers.
func (c *collector) holds(s connectors.Subject) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rows {
		for _, v := range r {
			if (s.Email != "" && v == s.Email) || (s.Phone != "" && v == s.Phone) {
				return true
			}
		}
	}
	return false
}
