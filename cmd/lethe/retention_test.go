package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// lethe retention run --dry-run prints what a run would purge, rule by rule; lethe retention
// run then purges the same, and status lists both runs.
func TestRetentionRunCommand(t *testing.T) {
	s := teststack.New(t, teststack.Options{Name: "cli-retention", Tenants: teststack.Salon + `
    retention:
      rules:
        - {name: past_bookings, connector: database, after: 60d}`})
	s.RunAll()
	env := map[string]string{"LETHE_CONFIG": s.CfgFile}
	for k, v := range s.Env {
		env[k] = v
	}
	row := regexp.MustCompile(`(?m)^database\s+past_bookings\s+(\d+)\s`)
	dry, stderr, code := runLethe(t, env, "retention", "run", "--dry-run")
	if code != 0 || !strings.Contains(dry, "would purge") {
		t.Fatalf("retention run --dry-run: exit %d, stdout %q, stderr %q", code, dry, stderr)
	}
	real, stderr, code := runLethe(t, env, "retention", "run", "--actor", "ops")
	if code != 0 {
		t.Fatalf("retention run: exit %d, stderr %q", code, stderr)
	}
	d, r := row.FindStringSubmatch(dry), row.FindStringSubmatch(real)
	if d == nil || r == nil || d[1] != r[1] || d[1] == "0" {
		t.Fatalf("the dry run and the run disagree or purge nothing:\n%s\n%s", dry, real)
	}
	status, stderr, code := runLethe(t, env, "retention", "status")
	if code != 0 || !strings.Contains(status, "schedule lethe-retention-salon: daily at 03:00 UTC") ||
		!regexp.MustCompile(`\srun\s+cli:ops\s+`+r[1]+`\s`).MatchString(status) || !strings.Contains(status, "dry run") || !strings.Contains(status, "past_bookings of database after 60d") {
		t.Fatalf("retention status: exit %d, stdout %q, stderr %q", code, status, stderr)
	}
}

func TestProgressLineNamesTheRuleAndTheCount(t *testing.T) {
	p := &workflows.RetentionProgress{Step: 1, RetentionReport: activities.RetentionReport{Rules: []activities.RuleCount{
		{Connector: "database", Rule: "inactive_customers", Rows: 12},
		{Connector: "database", Rule: "past_bookings", Rows: 40, Commands: 2},
	}}}
	if got, want := progressLine(p), "rule 2 of 2: past_bookings on database (40 so far, 2 commands); 52 records in all"; got != want {
		t.Errorf("progress line %q, want %q", got, want)
	}
}
