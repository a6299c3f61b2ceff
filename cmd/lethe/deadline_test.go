package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runDeadline goes through the root command, so the subcommand's wiring is tested too.
func runDeadline(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(append([]string{"deadline"}, args...))
	err = root.Execute()
	return o.String(), e.String(), err
}

func TestDeadlineCommand(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		stdout    string
		stderrHas string // "" when the date was not moved and stderr must stay empty
	}{
		{[]string{"--regime", "gdpr", "--received", "2026-06-15"}, "2026-07-15\n", ""},
		{[]string{"--regime", "gdpr", "--received", "2026-11-25", "--country", "DE"}, "2026-12-28\n",
			"1 month from receipt ends 2026-12-25; moved to the next working day past Fri 2026-12-25 public holiday"},
		{[]string{"--regime", "gdpr", "--received", "2026-01-31", "--extended"}, "2026-04-28\n", ""},
		{[]string{"--regime", "GDPR", "--received", "2027-11-27", "--country", "uk"}, "2027-12-29\n", "Mon 2027-12-27 public holiday"},
		{[]string{"--regime", "ccpa", "--received", "2026-01-01", "--extended"}, "2026-04-01\n", ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, err := runDeadline(t, tc.args...)
			require.NoError(t, err)
			assert.Equal(t, tc.stdout, stdout)
			if tc.stderrHas == "" {
				assert.Empty(t, stderr)
			} else {
				assert.Contains(t, stderr, tc.stderrHas)
				assert.Equal(t, 1, strings.Count(stderr, "\n"), "one explanation line")
			}
		})
	}
}

func TestDeadlineCommandJSON(t *testing.T) {
	stdout, _, err := runDeadline(t, "--regime", "gdpr", "--received", "2026-11-25", "--country", "de", "--json")
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &got), stdout)
	assert.Equal(t, "2026-12-28", got["due_date"])
	assert.Equal(t, "gdpr", got["regime"])
	assert.Equal(t, "2026-11-25", got["received"])
	assert.Equal(t, "DE", got["country"])
	assert.Equal(t, false, got["extended"])
	assert.Equal(t, "2026-12-25", got["period_end"])
	assert.Equal(t, true, got["rolled"])
	assert.Contains(t, got["reason"], "moved to the next working day")
	require.Len(t, got["skipped"], 3)
	assert.Equal(t, "Sunday", got["skipped"].([]any)[2].(map[string]any)["reason"])

	stdout, _, err = runDeadline(t, "--regime", "ccpa", "--received", "2026-01-01", "--json")
	require.NoError(t, err)
	got = nil
	require.NoError(t, json.Unmarshal([]byte(stdout), &got), stdout)
	assert.Equal(t, "2026-02-15", got["due_date"])
	assert.Nil(t, got["country"])
	assert.Equal(t, false, got["rolled"])
	assert.NotContains(t, got, "reason")
	assert.Equal(t, []any{}, got["skipped"])
}

func TestDeadlineCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--regime", "lgpd", "--received", "2026-01-01"}, `--regime: unknown regime "lgpd": want gdpr or ccpa`},
		{[]string{"--regime", "gdpr", "--received", "01/02/2026"}, `--received: invalid date "01/02/2026": want YYYY-MM-DD, e.g. 2026-03-14`},
		{[]string{"--regime", "gdpr", "--received", "2026-01-01", "--country", "PT"}, "--country: no public-holiday calendar for country PT; use one of AT, BE"},
		{[]string{"--regime", "gdpr"}, `required flag(s) "received" not set`},
		{[]string{"--regime", "gdpr", "--received", "2026-01-01", "extra"}, `unknown command "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, _, err := runDeadline(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n")
			assert.Empty(t, stdout)
		})
	}
}

// As a user sees it: exit status 1 and one line on stderr, no usage dump.
func TestDeadlineBadFlagFromTheBinary(t *testing.T) {
	stdout, stderr, code := runLethe(t, nil, "deadline", "--regime", "gdpr", "--received", "2026-02-30")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "lethe: --received: invalid date \"2026-02-30\": want YYYY-MM-DD, e.g. 2026-03-14\n", stderr)

	stdout, stderr, code = runLethe(t, nil, "deadline", "--regime", "gdpr", "--received", "2026-11-25", "--country", "DE")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "2026-12-28\n", stdout)
}

func TestDeadlineHelp(t *testing.T) {
	stdout, _, err := runDeadline(t, "--help")
	require.NoError(t, err)
	for _, want := range []string{"--regime", "--received", "--country", "--extended", "--json", "Examples:", "lethe deadline --regime gdpr --received 2026-11-25 --country DE"} {
		assert.Contains(t, stdout, want)
	}
}
