package schemas

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every fixture under testdata/ with the schema Validate should report and the exact error text
// ("" for a valid message). The error texts are what lands in lethe.dlq, so they are pinned.
var fixtures = []struct {
	file    string
	schema  string
	wantErr string
}{
	{"breach-intake/valid-full.json", BreachIntake, ""},
	{"breach-intake/valid-minimal.json", BreachIntake, ""},
	{"breach-intake/invalid-jurisdiction.json", BreachIntake, `lethe.breach.intake v1: /affected/0/jurisdiction: does not match ^[A-Z]{2}(-[A-Z0-9]{1,3})?$`},
	{"breach-intake/invalid-missing-aware-at.json", BreachIntake, `lethe.breach.intake v1: missing property "aware_at"`},
	{"request-intake/valid-minimal.json", RequestIntake, ""},
	{"request-intake/valid-full.json", RequestIntake, ""},
	{"request-intake/valid-ccpa-phone-only.json", RequestIntake, ""},
	{"request-intake/invalid-email.json", RequestIntake, `lethe.request.intake v1: /subject/email: is not a valid email`},
	{"request-intake/invalid-no-identifier.json", RequestIntake, `lethe.request.intake v1: /subject: needs at least one of "email", "phone", "customer_id"`},
	{"request-intake/invalid-type.json", RequestIntake, `lethe.request.intake v1: /type: "delete" is not one of access, portability, rectification, erasure, restriction, objection`},
	{"request-intake/invalid-rectification-without-changes.json", RequestIntake, `lethe.request.intake v1: missing property "changes"`},
	{"request-intake/invalid-empty-changes.json", RequestIntake, `lethe.request.intake v1: /changes: must have at least 1 property`},
	{"request-intake/invalid-changes-not-string.json", RequestIntake, `lethe.request.intake v1: /changes/visits: must be string, not number`},
	{"request-intake/invalid-phone.json", RequestIntake, `lethe.request.intake v1: /subject/phone: does not match ^\+[1-9][0-9]{6,14}$`},
	{"request-intake/invalid-received-at.json", RequestIntake, `lethe.request.intake v1: /received_at: is not a valid date-time`},
	{"request-intake/invalid-country.json", RequestIntake, `lethe.request.intake v1: /country: does not match ^[A-Z]{2}$`},
	{"request-intake/invalid-request-id.json", RequestIntake, `lethe.request.intake v1: /request_id: does not match ^[A-Za-z0-9_-]{1,64}$`},
	{"request-intake/invalid-note-too-long.json", RequestIntake, `lethe.request.intake v1: /note: is too long (2001 characters, at most 2000)`},
	{"request-intake/invalid-missing-tenant.json", RequestIntake, `lethe.request.intake v1: missing property "tenant_id"`},
	{"request-intake/invalid-channel-and-regime.json", RequestIntake, `lethe.request.intake v1: /channel: "fax" is not one of api, myaccount, kafka, post, phone, email; /regime: "lgpd" is not one of gdpr, ccpa`},

	{"consent-change/valid-withdrawn.json", ConsentChange, ""},
	{"consent-change/valid-granted-sms.json", ConsentChange, ""},
	{"consent-change/invalid-granted-string.json", ConsentChange, `lethe.consent.change v1: /granted: must be boolean, not string`},
	{"consent-change/invalid-purpose.json", ConsentChange, `lethe.consent.change v1: /purpose: does not match ^[a-z][a-z0-9_]{1,63}$`},
	{"consent-change/invalid-missing-changed-at.json", ConsentChange, `lethe.consent.change v1: missing property "changed_at"`},
	{"consent-change/invalid-changed-at-no-offset.json", ConsentChange, `lethe.consent.change v1: /changed_at: is not a valid date-time`},
	{"consent-state/valid-withdrawn.json", ConsentState, ""},
	{"consent-state/valid-late-grant.json", ConsentState, ""},
	{"consent-state/invalid-subject-identifier.json", ConsentState, `lethe.consent.state v1: /subject_ref: does not match ^[0-9a-f]{64}$`},
	{"consent-state/invalid-missing-change.json", ConsentState, `lethe.consent.state v1: missing property "change"`},

	{"connector-command/valid-erase.json", ConnectorCommand, ""},
	{"connector-command/valid-access.json", ConnectorCommand, ""},
	{"connector-command/valid-purge.json", ConnectorCommand, ""},
	{"connector-command/invalid-access-without-export.json", ConnectorCommand, `lethe.connector.command v2: missing property "export"`},
	{"connector-command/invalid-action.json", ConnectorCommand, `lethe.connector.command v2: /action: "delete" is not one of access, erase, rectify, restrict, block_check, notify, find, purge`},
	{"connector-command/invalid-task-token.json", ConnectorCommand, `lethe.connector.command v2: /task_token: is not valid base64`},
	{"connector-command/invalid-subject-in-clear.json", ConnectorCommand, `lethe.connector.command v2: /subject: is not allowed`},
	{"connector-command/invalid-not-sealed.json", ConnectorCommand, `lethe.connector.command v2: missing property "sealed"`},
	{"connector-command/invalid-connector.json", ConnectorCommand, `lethe.connector.command v2: /connector: does not match ^[a-z][a-z0-9_-]{0,62}$`},
	{"connector-command/invalid-export-location.json", ConnectorCommand, `lethe.connector.command v2: /export/location: is not a valid uri`},

	{"connector-sealed/valid-erase.json", ConnectorSealed, ""},
	{"connector-sealed/valid-rectify.json", ConnectorSealed, ""},
	{"connector-sealed/valid-purge-without-subject.json", ConnectorSealed, ""},
	{"connector-sealed/valid-find-without-subject.json", ConnectorSealed, ""},
	{"connector-sealed/invalid-erase-without-subject.json", ConnectorSealed, `lethe.connector.sealed v1: missing property "subject"`},
	{"connector-sealed/invalid-phone.json", ConnectorSealed, `lethe.connector.sealed v1: /subject/phone: does not match ^\+[1-9][0-9]{6,14}$`},

	{"connector-result/valid-succeeded-access.json", ConnectorResult, ""},
	{"connector-result/valid-block-check.json", ConnectorResult, ""},
	{"connector-result/valid-failed.json", ConnectorResult, ""},
	{"connector-result/valid-progress.json", ConnectorResult, ""},
	{"connector-result/valid-failed-retry-after.json", ConnectorResult, ""},
	{"connector-result/invalid-retry-after-zero.json", ConnectorResult, `lethe.connector.result v1: /error/retry_after_seconds: must be at least 1`},
	{"connector-result/invalid-failed-without-error.json", ConnectorResult, `lethe.connector.result v1: missing property "error"`},
	{"connector-result/invalid-error-without-permanent.json", ConnectorResult, `lethe.connector.result v1: /error: missing property "permanent"`},
	{"connector-result/invalid-status.json", ConnectorResult, `lethe.connector.result v1: /status: "done" is not one of succeeded, failed, progress`},
	{"connector-result/invalid-sha256.json", ConnectorResult, `lethe.connector.result v1: /output/exports/0/sha256: does not match ^[0-9a-f]{64}$`},
	{"connector-result/invalid-negative-count.json", ConnectorResult, `lethe.connector.result v1: /output/counts/bookings: must be at least 0`},

	{"event/valid-request-status.json", Event, ""},
	{"event/valid-breach-opened.json", Event, ""},
	{"event/valid-deadline-reminder.json", Event, ""},
	{"event/invalid-no-request-or-breach.json", Event, `lethe.event v1: needs at least one of "request_id", "breach_id"`},
	{"event/invalid-type.json", Event, `lethe.event v1: /type: does not match ^[a-z][a-z_]*(\.[a-z][a-z_]*)+$`},
	{"event/invalid-data-not-object.json", Event, `lethe.event v1: /data: must be object, not string`},

	{"dlq/valid-utf8.json", DLQ, ""},
	{"dlq/valid-binary.json", DLQ, ""},
	{"dlq/valid-reference.json", DLQ, ""},
	{"dlq/invalid-both-values.json", DLQ, `lethe.dlq v1: matches more than one oneOf alternative; send exactly one`},
	{"dlq/invalid-no-value.json", DLQ, `lethe.dlq v1: needs exactly one of "value", "value_base64", "value_ref"`},
	{"dlq/invalid-negative-offset.json", DLQ, `lethe.dlq v1: /offset: must be at least 0`},
	{"dlq/invalid-partition-fraction.json", DLQ, `lethe.dlq v1: /partition: must be integer, not number`},

	// The envelope: what Validate needs before it can pick a schema.
	{"envelope/invalid-not-json.json", "", `not valid JSON: unexpected EOF`},
	{"envelope/invalid-array.json", "", `not a JSON object`},
	{"envelope/invalid-missing-schema.json", "", `missing property "schema"`},
	{"envelope/invalid-unknown-schema.json", "", `/schema: unknown schema "lethe.request.delete" (known: lethe.breach.intake, lethe.connector.command, lethe.connector.result, lethe.connector.sealed, lethe.consent.change, lethe.consent.state, lethe.dlq, lethe.event, lethe.request.intake, lethe.webhook.answer, lethe.webhook.task)`},
	{"webhook-task/valid-erase.json", WebhookTask, ""},
	{"webhook-task/invalid-action.json", WebhookTask, `lethe.webhook.task v1: /action: "purge" is not one of access, erase, rectify, restrict, block_check, notify`},
	{"webhook-answer/valid-erase.json", WebhookAnswer, ""},
	{"webhook-answer/valid-access.json", WebhookAnswer, ""},
	{"webhook-answer/valid-blocked.json", WebhookAnswer, ""},
	{"webhook-answer/invalid-failed-without-reason.json", WebhookAnswer, `lethe.webhook.answer v1: needs at least one of "error", "blocks"`},
	{"webhook-answer/invalid-status.json", WebhookAnswer, `lethe.webhook.answer v1: /status: "ok" is not one of succeeded, failed, accepted`},
	{"envelope/invalid-unknown-version.json", RequestIntake, `lethe.request.intake: /version: unknown version 2 (known: 1)`},
	{"envelope/invalid-version-string.json", RequestIntake, `lethe.request.intake: /version: must be an integer`},
	{"envelope/invalid-missing-version.json", RequestIntake, `lethe.request.intake: missing property "version"`},
}

func readFixture(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	return b
}

func TestValidateFixtures(t *testing.T) {
	for _, tc := range fixtures {
		t.Run(tc.file, func(t *testing.T) {
			name, err := Validate(readFixture(t, tc.file))
			assert.Equal(t, tc.schema, name)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantErr, err.Error())
			var ve *Error
			require.True(t, errors.As(err, &ve), "want *schemas.Error, got %T", err)
			assert.NotEmpty(t, ve.Problems)
		})
	}
}

// ValidateAs must agree with Validate on every fixture that names a known schema.
func TestValidateAsAgrees(t *testing.T) {
	for _, tc := range fixtures {
		if tc.schema == "" {
			continue
		}
		err := ValidateAs(tc.schema, readFixture(t, tc.file))
		if tc.wantErr == "" {
			assert.NoError(t, err, tc.file)
		} else if assert.Error(t, err, tc.file) {
			assert.Equal(t, tc.wantErr, err.Error(), tc.file)
		}
	}
}

func TestValidateAsRejectsOtherSchema(t *testing.T) {
	err := ValidateAs(ConnectorResult, readFixture(t, "connector-command/valid-erase.json"))
	require.Error(t, err)
	assert.Equal(t, `lethe.connector.result: /schema: is "lethe.connector.command", want "lethe.connector.result"`, err.Error())

	err = ValidateAs("lethe.nope", readFixture(t, "event/valid-request-status.json"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown schema "lethe.nope"`)

	err = ValidateAs(Event, []byte(`{"schema":`))
	require.Error(t, err)
	assert.Equal(t, "lethe.event: not valid JSON: unexpected EOF", err.Error())
}

// Fixtures must not rot: every file is in the table, and every message schema has both a
// message it accepts and one it rejects.
func TestEveryFixtureIsChecked(t *testing.T) {
	onDisk, err := filepath.Glob("testdata/*/*.json")
	require.NoError(t, err)
	listed := map[string]bool{}
	valid, invalid := map[string]bool{}, map[string]bool{}
	for _, tc := range fixtures {
		listed[filepath.Join("testdata", tc.file)] = true
		if tc.wantErr == "" {
			valid[tc.schema] = true
		} else {
			invalid[tc.schema] = true
		}
	}
	for _, f := range onDisk {
		assert.True(t, listed[f], "%s is not in the fixtures table", f)
	}
	for _, name := range Names() {
		assert.True(t, valid[name], "no valid example for %s", name)
		assert.True(t, invalid[name], "no invalid example for %s", name)
	}
}

func TestNamesMatchConstants(t *testing.T) {
	want := []string{RequestIntake, BreachIntake, ConsentChange, ConsentState, ConnectorCommand, ConnectorSealed, ConnectorResult, Event, DLQ, WebhookTask, WebhookAnswer}
	sort.Strings(want)
	assert.Equal(t, want, Names())
}

// Each message schema's $id must be its file name under the base URL, or relative $refs to
// common.schema.json would resolve somewhere else.
func TestSchemaIDsMatchFileNames(t *testing.T) {
	files, err := filepath.Glob("*.schema.json")
	require.NoError(t, err)
	require.Len(t, files, 12)
	for _, f := range files {
		var doc struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		require.NoError(t, json.Unmarshal(readFile(t, f), &doc), f)
		assert.Equal(t, baseURL+f, doc.ID, f)
		assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", doc.Schema, f)
	}
}

func readFile(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	return b
}

// A DLQ reason gets logged; the subject's email or phone must not appear in it.
func TestErrorsDoNotEchoPersonalData(t *testing.T) {
	for file, secret := range map[string]string{
		"request-intake/invalid-email.json": "jane.doe",
		"request-intake/invalid-phone.json": "1234567",
	} {
		_, err := Validate(readFixture(t, file))
		require.Error(t, err, file)
		assert.NotContains(t, err.Error(), secret, file)
	}
}

// Many problems still give one short line.
func TestErrorIsBounded(t *testing.T) {
	msg := `{"schema":"lethe.connector.result","version":1,"idempotency_key":"k k","request_id":"r r",
		"tenant_id":"t t","connector":"C","action":"x","task_token":"","status":"?","completed_at":"then"}`
	_, err := Validate([]byte(msg))
	require.Error(t, err)
	line := err.Error()
	assert.NotContains(t, line, "\n")
	assert.Contains(t, line, "more)")
	assert.Less(t, len(line), 400)
	var ve *Error
	require.ErrorAs(t, err, &ve)
	assert.Greater(t, len(ve.Problems), maxProblems)
}

// The same invalid message always gives the same reason, whatever order the library found
// the problems in.
func TestErrorIsStable(t *testing.T) {
	b := readFixture(t, "request-intake/invalid-channel-and-regime.json")
	_, first := Validate(b)
	require.Error(t, first)
	for range 20 {
		_, err := Validate(b)
		require.Error(t, err)
		assert.Equal(t, first.Error(), err.Error())
	}
}

func TestLongValuesAreClipped(t *testing.T) {
	long := strings.Repeat("z", 500)
	_, err := Validate([]byte(`{"schema":"lethe.event","version":1,"id":"e1","type":"request.x","tenant_id":"t",
		"request_id":"r","occurred_at":"2026-01-01T00:00:00Z","status":"` + long + `"}`))
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200)

	_, err = Validate([]byte(`{"schema":"` + long + `","version":1}`))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), long)
}

func TestFSHoldsTheSchemas(t *testing.T) {
	b, err := fs.ReadFile(FS(), "request-intake.schema.json")
	require.NoError(t, err)
	assert.Equal(t, readFile(t, "request-intake.schema.json"), b)
}
