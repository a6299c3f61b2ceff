package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/worker"
	"github.com/lethe-privacy/lethe/workflows"
)

// lethe breaches against the real stack: a worker runs in the test, each command is the lethe
// binary on its own. A breach is opened with an earlier time of awareness, shown with the hours
// left on its clocks, assessed, notified late (refused without reasons), closed, and listed.
func TestBreachesCommandsOnTheStack(t *testing.T) {
	ctx := context.Background()
	pg := testenv.PostgresURL(t)
	st, err := store.Open(ctx, pg, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	prefix := "cli-" + testenv.Suffix() + "."
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t), Partitions: 1, TopicPrefix: prefix, Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.EnsureTopics(ctx, bus.TopicEvents); err != nil {
		t.Fatal(err)
	}
	mg := mailgun.NewMockServer()
	t.Cleanup(mg.Stop)
	sender, err := mail.NewMailgun(mail.Config{Domain: "mg.salon.example", APIKey: "key-cli", APIBase: mg.URL(), From: "privacy@mg.salon.example"})
	if err != nil {
		t.Fatal(err)
	}
	queue := "cli-breaches-" + testenv.Suffix()
	tenant := config.Tenant{ID: "salon", Name: "Salon Example", Country: "DE", DPOEmail: "dpo@salon.example"}
	w := worker.New(testenv.Temporal(t), queue, &activities.Activities{Store: st, Bus: b, Mail: sender, Tenants: map[string]config.Tenant{"salon": tenant}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	cfgFile := filepath.Join(t.TempDir(), "lethe.yaml")
	os.WriteFile(cfgFile, []byte("tenants: [{id: salon, regime: gdpr, country: DE, dpo_email: dpo@salon.example}]\n"), 0o600)
	env := map[string]string{"LETHE_CONFIG": cfgFile, "LETHE_SIGNING_KEY": "breaches-test-signing-key-0123456789ab", "DATABASE_URL": pg,
		"LETHE_TEMPORAL_HOSTPORT": testenv.TemporalHostPort(t), "LETHE_TEMPORAL_TASK_QUEUE": queue, "LETHE_KAFKA_BROKERS": strings.Join(testenv.KafkaBrokers(t), ",")}
	run := func(want int, args ...string) string {
		t.Helper()
		out, stderr, code := runLethe(t, env, append([]string{"breaches", "--actor", "dpo"}, args...)...)
		if code != want {
			t.Fatalf("lethe breaches %s: exit %d, want %d; stderr: %s", strings.Join(args, " "), code, want, stderr)
		}
		return out + stderr
	}

	aware := time.Now().Add(-80 * time.Hour).UTC().Format(time.RFC3339)
	id := "B-" + testenv.Suffix()
	if got := run(1, "open", "--title", "Stolen laptop", "--aware-at", "yesterday"); !strings.Contains(got, "--aware-at \"yesterday\": want an RFC 3339 time") {
		t.Errorf("bad --aware-at: %s", got)
	}
	if got := run(0, "open", "--id", id, "--title", "Stolen laptop", "--aware-at", aware, "--affected", "DE=120", "--nature", "A laptop was stolen"); got != id+"\n" {
		t.Errorf("open printed %q", got)
	}
	if got := run(0, "open", "--id", id, "--title", "Stolen laptop", "--aware-at", aware); got != id+" (already open: the same breach)\n" {
		t.Errorf("a second open printed %q", got)
	}
	show := func() workflows.BreachState {
		var s workflows.BreachState
		if err := json.Unmarshal([]byte(run(0, "show", id, "--json")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := show()
	if c := s.Clocks[0]; c.Rule != "gdpr-art33-authority" || c.RemainingSeconds == nil || *c.RemainingSeconds > -7*3600 {
		t.Errorf("the authority clock 80 hours after awareness: %+v", c)
	}
	if got := run(0, "show", id); !strings.Contains(got, "gdpr-art33-authority") || !strings.Contains(got, "h past") || goSyntax.MatchString(got) {
		t.Errorf("show printed:\n%s", got)
	}
	if got := run(1, "notify", id, "--rule", "gdpr-art33-authority"); !strings.Contains(got, "give the reasons for the delay") {
		t.Errorf("a late notification without reasons: %s", got)
	}
	run(0, "assess", id, "--risk", "risk", "--rationale", "customer names and bookings")
	run(0, "notify", id, "--rule", "gdpr-art33-authority", "--reference", "BfDI-1", "--late-reasons", "found on the weekend")
	// close returns once the workflow has recorded the closure in the register.
	run(0, "close", id, "--reason", "measures complete")
	if got := run(0, "list"); !strings.Contains(got, id+"  closed") || !strings.Contains(got, "risk") {
		t.Errorf("list printed:\n%s", got)
	}
	if got := run(0, "list", "--status", "open"); got != "no breaches with status open\n" {
		t.Errorf("an empty list printed %q", got)
	}
}

// Every part of a breach as `lethe breaches show` prints it reads as text.
func TestBreachPrintsForPeople(t *testing.T) {
	at := time.Date(2026, 3, 6, 16, 0, 0, 0, time.UTC)
	left := int64(-3600 * 3)
	st := workflows.BreachState{BreachID: "B-1", Title: "Stolen laptop", Status: "open", AwareAt: at, Risk: "high", ContentVersion: 2,
		Missing: []string{"likely consequences"},
		Clocks: []workflows.BreachClock{
			{Obligation: breachclock.Obligation{Rule: "gdpr-art33-authority", Notify: "supervisory authority", Kind: breachclock.Deadline, Due: at.Add(72 * time.Hour)},
				Status: workflows.ClockEscalated, RemainingSeconds: &left},
			{Obligation: breachclock.Obligation{Rule: "sec-8k-item-105", Notify: "investors", Kind: breachclock.Deadline, Waiting: "the materiality determination"}, Status: workflows.ClockWaiting},
			{Obligation: breachclock.Obligation{Rule: "gdpr-art33-register", Kind: breachclock.Record}, Status: workflows.ClockDocumented},
			{Obligation: breachclock.Obligation{Rule: "lgpd-anpd", Notify: "ANPD", Kind: breachclock.Deadline, Due: at}, Status: workflows.ClockNotifiedLate,
				Notification: &workflows.BreachNotification{NotifiedAt: at, LateReasons: "found late"}},
		},
		Steps: []domain.Step{{At: at, Note: "opened by dpo"}},
	}
	var out bytes.Buffer
	printBreach(&out, st)
	if m := goSyntax.FindString(out.String()); m != "" {
		t.Errorf("printBreach wrote Go value syntax %q:\n%s", m, out.String())
	}
	for _, want := range []string{"3.0 h past", "waits for the materiality determination", "documented, not notified", "(late: found late)", "missing: likely consequences"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printBreach lacks %q:\n%s", want, out.String())
		}
	}
}
