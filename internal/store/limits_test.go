package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/testenv"
)

// Concurrent takes never hand out more than the budget, and the budget comes back with time.
func TestTakeIsAtomicAndRefills(t *testing.T) {
	s := testenv.Store(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := s.Take(ctx, "k", 10, time.Hour, now, false)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 10 {
		t.Fatalf("%d of 40 concurrent takes allowed, want the budget of 10", allowed.Load())
	}
	ok, wait, err := s.Take(ctx, "k", 10, time.Hour, now, false)
	if err != nil || ok || wait != 6*time.Minute {
		t.Fatalf("over the budget: ok %v, wait %v, err %v; want refused for 6m (one unit per 6m)", ok, wait, err)
	}
	if ok, _, _ := s.Take(ctx, "k", 10, time.Hour, now.Add(6*time.Minute), false); !ok {
		t.Fatal("one unit is back after 6 minutes")
	}
	// Counting without refusing fills the budget for at most one period.
	for range 100 {
		if ok, _, err := s.Take(ctx, "f", 10, time.Hour, now, true); !ok || err != nil {
			t.Fatalf("a forced take was refused: %v", err)
		}
	}
	if ok, _, _ := s.Take(ctx, "f", 10, time.Hour, now.Add(time.Hour), false); !ok {
		t.Fatal("forced takes held the key longer than one period")
	}
	n, err := s.ExpireRates(ctx, now.Add(3*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("expired %d keys (%v), want both", n, err)
	}
}
