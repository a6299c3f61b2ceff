// Package connectortest is the conformance suite every connector passes. A connector's test
// declares what it supports and gives a factory for fresh fixtures:
//
//	func TestConformance(t *testing.T) {
//		connectortest.Run(t, connectortest.Features{Capabilities: myconn.Capabilities, LargeResultRows: 5000},
//			func(t *testing.T) connectortest.Fixture { ... })
//	}
//
// Each check is a subtest, skipped only when the feature it needs is not declared.
package connectortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Run runs the conformance suite.
func Run(t *testing.T, features Features, factory func(t *testing.T) Fixture) {
	has := func(c connectors.Capability) bool { return slices.Contains(features.Capabilities, c) }
	timeout := features.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	fresh := func(t *testing.T, needs ...connectors.Capability) Fixture {
		t.Helper()
		for _, c := range needs {
			if !has(c) {
				t.Skipf("capability %s not declared", c)
			}
		}
		f := factory(t)
		if f.Connector == nil || f.Seed == nil || f.HasPersonalData == nil {
			t.Fatal("fixture needs Connector, Seed and HasPersonalData")
		}
		return f
	}
	var seq int
	var mu sync.Mutex
	task := func(t *testing.T, action connectors.Capability, s connectors.Subject) connectors.Task {
		mu.Lock()
		seq++
		n := seq
		mu.Unlock()
		req := fmt.Sprintf("req-%s-%d", t.Name(), n)
		return connectors.Task{Key: req + "/conformance/" + string(action), RequestID: req, TenantID: "conformance", Subject: s}
	}
	ctx := context.Background()

	t.Run("capabilities match", func(t *testing.T) {
		f := factory(t)
		got := connectors.Implemented(f.Connector)
		want := slices.Clone(features.Capabilities)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("connector implements %v, features declare %v", got, want)
		}
	})

	t.Run("erase is idempotent", func(t *testing.T) {
		f := fresh(t, connectors.CapErase)
		e := f.Connector.(connectors.Eraser)
		s := f.Seed(t)
		if !f.HasPersonalData(t, s) {
			t.Fatal("Seed planted no personal data")
		}
		tk := task(t, connectors.CapErase, s)
		first, err := e.Erase(ctx, tk)
		if err != nil {
			t.Fatalf("first erase: %v", err)
		}
		if first.AlreadyApplied {
			t.Fatal("first erase reports already applied")
		}
		if f.HasPersonalData(t, s) {
			t.Fatal("personal data remains after erase")
		}
		second, err := e.Erase(ctx, tk)
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
		if _, err := e.Erase(ctx, task(t, connectors.CapErase, s)); err != nil {
			t.Fatalf("erase of an already erased subject under a new key: %v", err)
		}
	})

	t.Run("access after erase finds no personal data", func(t *testing.T) {
		f := fresh(t, connectors.CapErase, connectors.CapAccess)
		s := f.Seed(t)
		before := &collector{}
		if _, err := f.Connector.(connectors.Accessor).Access(ctx, task(t, connectors.CapAccess, s), before); err != nil {
			t.Fatalf("access before erase: %v", err)
		}
		if !before.holds(s) {
			t.Fatal("access before erase did not return the subject's identifiers")
		}
		if _, err := f.Connector.(connectors.Eraser).Erase(ctx, task(t, connectors.CapErase, s)); err != nil {
			t.Fatalf("erase: %v", err)
		}
		after := &collector{}
		if _, err := f.Connector.(connectors.Accessor).Access(ctx, task(t, connectors.CapAccess, s), after); err != nil {
			t.Fatalf("access after erase: %v", err)
		}
		if after.holds(s) {
			t.Fatal("access after erase still returns the subject's identifiers")
		}
		if f.HasPersonalData(t, s) {
			t.Fatal("personal data remains after erase")
		}
	})

	t.Run("block check", func(t *testing.T) {
		f := fresh(t, connectors.CapBlockCheck)
		if f.SeedBlocked == nil {
			t.Fatal("CapBlockCheck declared but the fixture has no SeedBlocked")
		}
		bc := f.Connector.(connectors.BlockChecker)
		free := f.Seed(t)
		res, err := bc.BlockCheck(ctx, task(t, connectors.CapBlockCheck, free))
		if err != nil {
			t.Fatalf("block check of an unblocked subject: %v", err)
		}
		if len(res.Blocks) != 0 {
			t.Fatalf("unblocked subject reports blocks %v", res.Blocks)
		}
		blocked := f.SeedBlocked(t)
		res, err = bc.BlockCheck(ctx, task(t, connectors.CapBlockCheck, blocked))
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
		if !has(connectors.CapErase) {
			return
		}
		_, err = f.Connector.(connectors.Eraser).Erase(ctx, task(t, connectors.CapErase, blocked))
		if !connectors.IsPermanent(err) {
			t.Fatalf("erase of a blocked subject: want a permanent error, got %v", err)
		}
		if blocks, ok := connectors.BlocksOf(err); !ok || len(blocks) == 0 {
			t.Fatalf("erase of a blocked subject: error carries no blocks: %v", err)
		}
		if !f.HasPersonalData(t, blocked) {
			t.Fatal("refused erase still removed personal data")
		}
	})

	t.Run("cancellation stops access", func(t *testing.T) {
		f := fresh(t, connectors.CapAccess)
		if features.LargeResultRows <= 0 || f.SeedLarge == nil {
			t.Skip("LargeResultRows not declared")
		}
		s := f.SeedLarge(t, features.LargeResultRows)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sink := &collector{onRow: func(n int) {
			if n == 1 {
				cancel()
			}
		}}
		done := make(chan error, 1)
		go func() {
			_, err := f.Connector.(connectors.Accessor).Access(cctx, task(t, connectors.CapAccess, s), sink)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("canceled access: want an error wrapping context.Canceled, got %v", err)
			}
		case <-time.After(timeout):
			t.Fatalf("access did not return within %s of cancellation", timeout)
		}
		if n := sink.count(); n >= features.LargeResultRows {
			t.Fatalf("canceled access still delivered all %d rows", n)
		}

		pre, cancelNow := context.WithCancel(ctx)
		cancelNow()
		if _, err := f.Connector.(connectors.Accessor).Access(pre, task(t, connectors.CapAccess, s), &collector{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("access with a canceled context: want context.Canceled, got %v", err)
		}
	})

	t.Run("large results are streamed", func(t *testing.T) {
		f := fresh(t, connectors.CapAccess)
		if features.LargeResultRows <= 0 || f.SeedLarge == nil {
			t.Skip("LargeResultRows not declared")
		}
		n := features.LargeResultRows
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
			_, err := f.Connector.(connectors.Accessor).Access(ctx, task(t, connectors.CapAccess, s), sink)
			done <- err
		}()
		// The first row must reach the sink while the call is still running.
		select {
		case <-first:
		case err := <-done:
			t.Fatalf("access returned (%v) before any row reached the sink", err)
		case <-time.After(timeout):
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
	})

	t.Run("permanent and retryable errors", func(t *testing.T) {
		f := fresh(t)
		var calls []func(connectors.Task) error
		if has(connectors.CapErase) {
			calls = append(calls, func(tk connectors.Task) error { _, err := f.Connector.(connectors.Eraser).Erase(ctx, tk); return err })
		}
		if has(connectors.CapAccess) {
			calls = append(calls, func(tk connectors.Task) error {
				_, err := f.Connector.(connectors.Accessor).Access(ctx, tk, &collector{})
				return err
			})
		}
		if has(connectors.CapBlockCheck) {
			calls = append(calls, func(tk connectors.Task) error {
				_, err := f.Connector.(connectors.BlockChecker).BlockCheck(ctx, tk)
				return err
			})
		}
		if len(calls) == 0 {
			t.Skip("no subject-level capability declared")
		}
		s := f.Seed(t)
		for i, call := range calls {
			if err := call(task(t, "bad", connectors.Subject{})); !connectors.IsPermanent(err) {
				t.Errorf("call %d with an empty subject: want a permanent error, got %v", i, err)
			}
			if features.InvalidParams != nil {
				tk := task(t, "bad", s)
				tk.Params = features.InvalidParams
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
			err := call(task(t, "lost", s))
			if err == nil {
				t.Errorf("call %d after disconnect succeeded", i)
			} else if connectors.IsPermanent(err) {
				t.Errorf("call %d after disconnect: want a retryable error, got permanent %v", i, err)
			}
		}
	})
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
