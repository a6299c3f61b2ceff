package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/internal/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lethe.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	base       = "postgres://lethe@127.0.0.1:5432/lethe"
	signingKey = "config-test-signing-key-0123456789abcdef"
)

func TestEnvironmentOverridesFile(t *testing.T) {
	p := writeFile(t, `
http: {addr: "0.0.0.0:9000"}
kafka: {brokers: ["file-broker:9092"], partitions: 6}
database: {url: "`+base+`"}
tenants:
  - id: salon
    regime: gdpr
    country: FR
    dpo_email: dpo@salon.example
    tokens: [{role: dpo, env: SALON_DPO_TOKEN}]
`)
	cfg, err := config.LoadFrom(p, env(map[string]string{
		"LETHE_KAFKA_BROKERS": "a:9092, b:9093",
		"SALON_DPO_TOKEN":     "0123456789abcdef0123",
		"LETHE_SIGNING_KEY":   signingKey,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Kafka.Brokers, ","); got != "a:9092,b:9093" {
		t.Errorf("brokers = %q, want the environment's", got)
	}
	if cfg.Kafka.Partitions != 6 || cfg.HTTP.Addr != "0.0.0.0:9000" {
		t.Errorf("file settings lost: %+v %+v", cfg.Kafka, cfg.HTTP)
	}
	if cfg.Temporal.TaskQueue != "lethe" {
		t.Errorf("default task queue lost: %q", cfg.Temporal.TaskQueue)
	}
	tn, ok := cfg.Tenant("salon")
	if !ok || tn.Tokens[0].Value() != "0123456789abcdef0123" {
		t.Errorf("tenant token not resolved from the environment")
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	ok := map[string]string{"DATABASE_URL": base, "LETHE_KAFKA_BROKERS": "k:9092", "LETHE_SIGNING_KEY": signingKey}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown key", "kafka: {brokerz: [x]}", ok, "field brokerz not found"},
		{"bad broker", "", with("LETHE_KAFKA_BROKERS", "no-port"), "kafka.brokers (LETHE_KAFKA_BROKERS)"},
		{"no database", "", map[string]string{"LETHE_KAFKA_BROKERS": "k:9092", "LETHE_SIGNING_KEY": signingKey}, "database.url (DATABASE_URL): not set"},
		{"not postgres", "", with("DATABASE_URL", "mysql://x"), "database.url (DATABASE_URL): not a postgres:// URL"},
		{"password in file", "database: {url: 'postgres://u:pw@h/db'}", ok, "database.url: holds a password"},
		{"missing secret", "tenants: [{id: a, regime: gdpr, tokens: [{role: admin, env: A_TOKEN}]}]", ok,
			"tenants[a].tokens[0]: environment variable A_TOKEN is not set"},
		{"bad role", "tenants: [{id: a, regime: gdpr, tokens: [{role: root, env: A_TOKEN}]}]", with("A_TOKEN", strings.Repeat("x", 20)),
			`tenants[a].tokens[0].role: "root" must be one of`},
		{"bad regime", "tenants: [{id: a, regime: hipaa}]", ok, `tenants[a].regime: "hipaa" must be gdpr or ccpa`},
		{"bad partitions", "", with("LETHE_KAFKA_PARTITIONS", "three"), "kafka.partitions (LETHE_KAFKA_PARTITIONS)"},
		{"bad pool", "", with("LETHE_DATABASE_MAX_CONNS", "ten"), `database.max_conns (LETHE_DATABASE_MAX_CONNS): "ten" is not a whole number`},
		{"empty pool", "", with("LETHE_DATABASE_MAX_CONNS", "0"), "database.max_conns: must be at least 1"},
		{"bad zone", "tenants: [{id: a, regime: gdpr, time_zone: Mars/Base}]", ok, "tenants[a].time_zone"},
		{"country without a calendar", "tenants: [{id: a, regime: gdpr, country: ZZ}]", ok,
			"tenants[a].country: ZZ has no public-holiday calendar; use one of AT, BE,"},
		{"country alias", "tenants: [{id: a, regime: gdpr, country: UK}]", ok, "tenants[a].country: write UK as GB"},
		{"no signing key", "", map[string]string{"DATABASE_URL": base, "LETHE_KAFKA_BROKERS": "k:9092"},
			"secrets.signing_key: environment variable LETHE_SIGNING_KEY is not set"},
		{"short signing key", "", with("LETHE_SIGNING_KEY", strings.Repeat("k", 31)), "secrets.signing_key: must be at least 32 bytes"},
		{"no DPO", "tenants: [{id: a, regime: gdpr}]", ok, "tenants[a].dpo_email: not set"},
		{"bad DPO", "tenants: [{id: a, regime: gdpr, dpo_email: 'Dana <dpo@a.example>'}]", ok, `tenants[a].dpo_email: "Dana <dpo@a.example>" is not an email address`},
		{"bad staff", "tenants: [{id: a, regime: gdpr, contact_email: p@a.example, staff_email: desk}]", ok, "tenants[a].staff_email"},
		{"breach reminder past its clock", "tenants: [{id: a, regime: gdpr, dpo_email: d@a.example, breach: {reminders: {of: 72, at: [24, 72]}}}]", ok,
			"tenants[a].breach.reminders: reminder at 72 hours is not within a clock of 72 hours"},
		{"bad rate", "limits: {submit: {subject: lots}}", ok, `limits: "lots" must be a count and a period`},
		{"bad period", "limits: {verify: {client: 5/soon}}", ok, "limits: \"5/soon\": the period must be a duration"},
		{"bad proxy", "", with("LETHE_HTTP_TRUSTED_PROXIES", "10.0.0.0/8,lb"), `http.trusted_proxies (LETHE_HTTP_TRUSTED_PROXIES): "lb"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, c.file)
			}
			_, err := config.LoadFrom(path, env(c.env))
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans several lines: %q", err)
			}
		})
	}
}

func TestSecretFromFileNeverInError(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, "tenants: [{id: a, regime: gdpr, tokens: [{role: admin, file: "+keyFile+"}]}]")
	_, err := config.LoadFrom(p, env(map[string]string{"DATABASE_URL": base, "LETHE_KAFKA_BROKERS": "k:9092", "LETHE_SIGNING_KEY": signingKey}))
	if err == nil || !strings.Contains(err.Error(), "shorter than 16") {
		t.Fatalf("err = %v, want the short-token error", err)
	}
	if strings.Contains(err.Error(), "short\n") || strings.Contains(err.Error(), `"short"`) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

// A configuration written back to YAML (lethe dev does) keeps its meaning: an unset approval
// list stays "the defaults", not "no approvals".
func TestPolicyRoundTripsThroughYAML(t *testing.T) {
	var p config.Policy
	b, err := yaml.Marshal(config.Tenant{ID: "a", Regime: "gdpr", Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	var back config.Tenant
	if err := yaml.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Policy.NeedsApproval("erasure") || back.Policy.NeedsApproval("access") {
		t.Fatalf("after a YAML round trip the default approvals are lost:\n%s", b)
	}
	none := config.Policy{ManualApproval: []string{}}
	if none.NeedsApproval("erasure") {
		t.Fatal("an explicit empty list means no manual approvals")
	}
}

func TestKafkaRetention(t *testing.T) {
	p := writeFile(t, `
kafka: {brokers: ["k:9092"], retention: {commands: 48h, events: 2160h}}
database: {url: "`+base+`"}
`)
	cfg, err := config.LoadFrom(p, env(map[string]string{"LETHE_KAFKA_RETENTION_DLQ": "336h", "LETHE_SIGNING_KEY": signingKey}))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Kafka.Retention
	if r.Commands != 48*time.Hour || r.Events != 2160*time.Hour || r.DLQ != 336*time.Hour || r.Results != 0 {
		t.Errorf("retention = %+v", r)
	}
	for value, want := range map[string]string{
		"30s":  "kafka.retention.results (LETHE_KAFKA_RETENTION_RESULTS): 30s is shorter than a minute",
		"week": `kafka.retention.results (LETHE_KAFKA_RETENTION_RESULTS): "week" is not a duration`,
	} {
		_, err := config.LoadFrom(p, env(map[string]string{"LETHE_KAFKA_RETENTION_RESULTS": value, "LETHE_SIGNING_KEY": signingKey}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("results %q: error %v, want %q", value, err, want)
		}
	}
}

// Reminders go to staff_email, else to the DPO; the escalation to dpo_email, else to the
// public contact address.
func TestDeadlineMailFallsBack(t *testing.T) {
	for _, c := range []struct {
		tenant     config.Tenant
		staff, dpo string
	}{
		{config.Tenant{ContactEmail: "p@a.example", DPOEmail: "d@a.example", StaffEmail: "s@a.example"}, "s@a.example", "d@a.example"},
		{config.Tenant{ContactEmail: "p@a.example", DPOEmail: "d@a.example"}, "d@a.example", "d@a.example"},
		{config.Tenant{ContactEmail: "p@a.example"}, "p@a.example", "p@a.example"},
	} {
		if got := c.tenant.StaffAddress(); got != c.staff {
			t.Errorf("%+v: staff address %q, want %q", c.tenant, got, c.staff)
		}
		if got := c.tenant.DPOAddress(); got != c.dpo {
			t.Errorf("%+v: DPO address %q, want %q", c.tenant, got, c.dpo)
		}
	}
}

func TestLimitsOverrideOnlyWhatIsSet(t *testing.T) {
	cfg, err := config.LoadFrom(writeFile(t, "limits: {submit: {subject: 2/10m, client: off}}"),
		env(map[string]string{"DATABASE_URL": base, "LETHE_KAFKA_BROKERS": "k:9092", "LETHE_SIGNING_KEY": signingKey}))
	if err != nil {
		t.Fatal(err)
	}
	def := config.DefaultLimits()
	want := def
	want.Submit.Subject = config.Rate{N: 2, Per: 10 * time.Minute}
	want.Submit.Client = config.Rate{}
	if cfg.Limits != want {
		t.Fatalf("limits = %+v, want %+v", cfg.Limits, want)
	}
	if !cfg.Limits.Submit.Client.Off() || cfg.Limits.Submit.Tenant.Off() {
		t.Fatal("off turns off only the limit it names")
	}
	for _, r := range []string{"5/1h", "600/1m", "2/10m", "3/1m30s", "7/36h", "off"} {
		v, err := config.ParseRate(r)
		if err != nil || v.String() != r {
			t.Errorf("%s reads back as %s (%v)", r, v, err)
		}
	}
}

func TestConnectorKeys(t *testing.T) {
	k1, k2 := strings.Repeat("A", 43)+"=", strings.Repeat("B", 43)+"="
	body := func(keys string) string {
		return `
kafka: {brokers: ["k:9092"]}
database: {url: "` + base + `"}
connectors: [{name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [erase]}}]
secrets: {connector_keys: {` + keys + `}}
`
	}
	cfg, err := config.LoadFrom(writeFile(t, body(`newsletter: [{id: k2, env: K2}, {id: k1, env: K1}]`)), env(map[string]string{"K1": k1, "K2": k2, "LETHE_SIGNING_KEY": signingKey}))
	require.NoError(t, err)
	keys := cfg.ConnectorKeyList("newsletter")
	require.Len(t, keys, 2)
	assert.Equal(t, "k2", keys[0].ID, "the first key listed seals")

	for keys, want := range map[string]string{
		``: "secrets.connector_keys.newsletter: remote connector newsletter needs a key of its own",
		`newsletter: [{id: k1, env: K1}], mailchimp: [{id: k1, env: K1}]`: "secrets.connector_keys.mailchimp: no connector or remote connector has this name",
		`newsletter: [{id: k1, env: SHORT}]`:                              "secrets.connector_keys.newsletter[0]: key k1: 3 bytes, want 32",
		`newsletter: [{id: k1, env: UNSET}]`:                              "secrets.connector_keys.newsletter[0]: environment variable UNSET is not set",
		`newsletter: [{id: k1, env: K1}, {id: k1, env: K2}]`:              `secrets.connector_keys.newsletter[1].id: "k1" appears twice`,
		`newsletter: [{id: "a b", env: K1}]`:                              `key id "a b"`,
	} {
		_, err := config.LoadFrom(writeFile(t, body(keys)), env(map[string]string{"K1": k1, "K2": k2, "SHORT": "YWJj", "LETHE_SIGNING_KEY": signingKey}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", keys, err, want)
		}
		if err != nil && strings.Contains(err.Error(), k1) {
			t.Errorf("%s: the error shows the key", keys)
		}
	}
}

// consent_purpose is a purpose, on an instance that can notify; anything else stops the start.
func TestConsentPurpose(t *testing.T) {
	k1 := strings.Repeat("A", 43) + "="
	body := func(caps, purpose string) string {
		return `
kafka: {brokers: ["k:9092"]}
database: {url: "` + base + `"}
connectors: [{name: newsletter, type: remote, tenants: ["*"], consent_purpose: ` + purpose + `, config: {capabilities: [` + caps + `]}}]
secrets: {connector_keys: {newsletter: [{id: k1, env: K1}]}}
`
	}
	vars := env(map[string]string{"K1": k1, "LETHE_SIGNING_KEY": signingKey})
	cfg, err := config.LoadFrom(writeFile(t, body("notify", "marketing_email")), vars)
	require.NoError(t, err)
	in, _ := cfg.Connector("newsletter")
	assert.Equal(t, "marketing_email", in.ConsentPurpose)
	for _, tc := range []struct{ caps, purpose, want string }{
		{"notify", `"Marketing Email"`, `connectors[newsletter].consent_purpose: "Marketing Email" is not a consent purpose`},
		{"erase", "marketing_email", "connectors[newsletter].consent_purpose: the instance cannot notify"},
	} {
		_, err := config.LoadFrom(writeFile(t, body(tc.caps, tc.purpose)), vars)
		if assert.Error(t, err, tc.purpose) {
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
		}
	}
}
