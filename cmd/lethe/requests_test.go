package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
)

// A --tenant that is not configured is a typo to point out, not an empty listing.
func TestRequestsRefuseAnUnknownTenant(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "lethe.yaml")
	os.WriteFile(cfgFile, []byte("tenants: [{id: salon, regime: gdpr, dpo_email: dpo@salon.example}, {id: studio, regime: gdpr, dpo_email: dpo@studio.example}]\n"), 0o600)
	env := map[string]string{"LETHE_CONFIG": cfgFile, "LETHE_SIGNING_KEY": "requests-test-signing-key-0123456789ab",
		"DATABASE_URL": "postgres://lethe@127.0.0.1:1/lethe", "LETHE_TEMPORAL_HOSTPORT": "127.0.0.1:1", "LETHE_KAFKA_BROKERS": "127.0.0.1:1"}
	for _, args := range [][]string{{"list"}, {"show", "R-1"}, {"approve", "R-1"}} {
		_, stderr, code := runLethe(t, env, append([]string{"requests", "--tenant", "salom"}, args...)...)
		want := "lethe: --tenant salom: no such tenant; configured: salon, studio\n"
		if code != 1 || stderr != want {
			t.Errorf("requests %s: exit %d, stderr %q; want 1, %q", strings.Join(args, " "), code, stderr, want)
		}
	}
}

// goSyntax is what fmt prints for Go values (maps, pointers to structs, slices, nil, bad verbs):
// never something a person should have to read.
var goSyntax = regexp.MustCompile(`map\[|&\{|[{}\[\]]|<nil>|%!`)

// Every field of a request as `lethe requests show` prints it reads as text.
func TestRequestStatePrintsForPeople(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	st := domain.RequestState{
		RequestID: "R-7K3QF2M9XA", TenantID: "salon", Type: domain.TypeErasure, Status: domain.StatusFailed,
		Extended: true, ExtensionReason: "twelve systems", ReceivedAt: at, DueDate: "2026-06-02",
		DenialReason: "manifestly unfounded", Closed: true, FailureReason: "terminated in Temporal",
		Blocks:     []connectors.Block{{Code: "active_booking", Reason: "a booking on 8 March"}},
		Connectors: []domain.ConnectorOutcome{{Connector: "database", Action: "erase", Status: "failed", Error: "timeout", Output: &domain.Output{}}},
		Export:     &domain.ExportInfo{URI: "file:///exports/x.zip", SHA256: "ab12", Bytes: 7560},
		Steps:      []domain.Step{{At: at, Status: domain.StatusReceived, Note: "received via post"}},
	}
	var out bytes.Buffer
	printState(&out, st)
	if m := goSyntax.FindString(out.String()); m != "" {
		t.Errorf("printState wrote Go value syntax %q:\n%s", m, out.String())
	}
	for _, want := range []string{"due 2026-06-02 (extended: twelve systems)", "blocked: a booking on 8 March (active_booking)", "database     erase        failed: timeout", "export: file:///exports/x.zip (sha256 ab12, 7560 bytes)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printState lacks %q:\n%s", want, out.String())
		}
	}
}

// An empty listing says so, and what was asked; a header over nothing reads as a failure.
func TestEmptyListSaysWhatWasAsked(t *testing.T) {
	var out bytes.Buffer
	printList(&out, nil, requests.Filter{Status: "blocked", DueBefore: "2026-04-01"})
	if got, want := out.String(), "no requests with status blocked due before 2026-04-01\n"; got != want {
		t.Errorf("printList = %q, want %q", got, want)
	}
	out.Reset()
	printList(&out, []requests.Summary{{ID: "R-1", Type: "access", Status: "completed", ReceivedAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), DueDate: "2026-04-02", Extended: true}}, requests.Filter{})
	if got := out.String(); !strings.Contains(got, "R-1  access  completed  2026-03-02  2026-04-02 (extended)") || goSyntax.MatchString(got) {
		t.Errorf("printList = %q", got)
	}
	if got := plural(1, "request", "requests") + ", " + plural(2, "request", "requests"); got != "1 request, 2 requests" {
		t.Errorf("plural = %q", got)
	}
}
