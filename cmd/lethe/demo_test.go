package main

import "testing"

// The demo's summary is read by people: row counts as words, not Go's map syntax.
func TestDemoSummaryReadsAsText(t *testing.T) {
	if got := rowCounts(map[string]int64{"payments": 2, "bookings": 3}); got != "bookings 3, payments 2" {
		t.Errorf("rowCounts = %q", got)
	}
	if got := rowCounts(nil); got != "none" {
		t.Errorf("rowCounts(nil) = %q", got)
	}
}
