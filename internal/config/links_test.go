package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// certFiles writes a self-signed certificate and its key as PEM files.
func certFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := testenv.Cert(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func TestLinkSettingsErrorsNameTheSetting(t *testing.T) {
	cert, _ := certFiles(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hunter2-is-not-a-certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := map[string]string{"DATABASE_URL": base, "LETHE_KAFKA_BROKERS": "k:9092", "LETHE_SIGNING_KEY": signingKey,
		"LETHE_KAFKA_SASL_PASSWORD": "kafka-password-hunter2"}
	cases := []struct{ name, file, want string }{
		{"unknown mechanism", "kafka: {sasl: {mechanism: GSSAPI, username: lethe}}",
			`kafka.sasl.mechanism (LETHE_KAFKA_SASL_MECHANISM): "GSSAPI" must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"plain in clear", "kafka: {sasl: {mechanism: PLAIN, username: lethe}}",
			"kafka.sasl.mechanism (LETHE_KAFKA_SASL_MECHANISM): PLAIN sends the password in clear; enable kafka.tls"},
		{"no username", "kafka: {sasl: {mechanism: SCRAM-SHA-512}}", "kafka.sasl.username (LETHE_KAFKA_SASL_USERNAME): must be set"},
		{"password in the YAML", "kafka: {sasl: {mechanism: SCRAM-SHA-512, username: lethe, password: hunter2}}", "a secret is never written in the YAML"},
		{"missing password", "kafka: {sasl: {mechanism: SCRAM-SHA-512, username: lethe, password: {env: NOT_SET}}}",
			"kafka.sasl.password: environment variable NOT_SET is not set"},
		{"unreadable CA", "kafka: {tls: {enabled: true, ca_file: /nonexistent/ca.pem}}", "kafka.tls.ca_file (LETHE_KAFKA_TLS_CA_FILE): open /nonexistent/ca.pem"},
		{"CA not PEM", "kafka: {tls: {enabled: true, ca_file: " + notPEM + "}}", "kafka.tls.ca_file (LETHE_KAFKA_TLS_CA_FILE): " + notPEM + " holds no PEM certificate"},
		{"cert without key", "kafka: {tls: {enabled: true, cert_file: " + cert + "}}", "kafka.tls: a client certificate needs both cert_file and key_file"},
		{"key not matching", "temporal: {tls: {enabled: true, cert_file: " + cert + ", key_file: " + cert + "}}",
			"temporal.tls.cert_file (LETHE_TEMPORAL_TLS_CERT_FILE): loading the client certificate"},
		{"files without TLS", "temporal: {tls: {ca_file: " + cert + "}}", "temporal.tls.enabled (LETHE_TEMPORAL_TLS): files or server_name are set but TLS is off"},
		{"API key from the YAML", "temporal: {api_key: hunter2}", "a secret is never written in the YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.LoadFrom(writeFile(t, c.file), env(ok))
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error spans lines or leaks a secret: %q", err)
			}
		})
	}
	bad := map[string]string{}
	for k, v := range ok {
		bad[k] = v
	}
	bad["LETHE_KAFKA_TLS"] = "maybe"
	if _, err := config.LoadFrom("", env(bad)); err == nil || !strings.Contains(err.Error(), `kafka.tls.enabled (LETHE_KAFKA_TLS): "maybe" is not true or false`) {
		t.Fatalf("err = %v, want the boolean error", err)
	}
}

func TestLinkSettingsBuildTLSAndSASL(t *testing.T) {
	cert, key := certFiles(t)
	p := writeFile(t, `
temporal: {host_port: "ns.tmprl.cloud:7233", namespace: ns.acct}
kafka:
  tls: {enabled: true, ca_file: `+cert+`, cert_file: `+cert+`, key_file: `+key+`, server_name: kafka.internal}
  sasl: {mechanism: SCRAM-SHA-512, username: lethe}
`)
	cfg, err := config.LoadFrom(p, env(map[string]string{"DATABASE_URL": base, "LETHE_KAFKA_BROKERS": "k:9092", "LETHE_SIGNING_KEY": signingKey,
		"LETHE_KAFKA_SASL_PASSWORD": "kafka-password", "LETHE_TEMPORAL_API_KEY": "temporal-api-key"}))
	if err != nil {
		t.Fatal(err)
	}
	kt := cfg.Kafka.TLS.Config()
	if kt == nil || kt.RootCAs == nil || len(kt.Certificates) != 1 || kt.ServerName != "kafka.internal" {
		t.Fatalf("kafka TLS = %+v, want the CA, the client certificate and the server name", kt)
	}
	mech, err := cfg.Kafka.SASL.Build()
	if err != nil || mech == nil || mech.Name() != "SCRAM-SHA-512" {
		t.Fatalf("SASL = %v, %v", mech, err)
	}
	if cfg.Temporal.APIKey.Value() != "temporal-api-key" {
		t.Fatal("the Temporal API key was not read from LETHE_TEMPORAL_API_KEY")
	}
	if tt := cfg.Temporal.TLS.Config(); tt == nil || tt.RootCAs != nil {
		t.Fatalf("Temporal TLS = %+v, want on (an API key needs it) with the system's roots", tt)
	}
	// Without settings, both links stay plaintext as before.
	plain, err := config.LoadFrom("", env(map[string]string{"DATABASE_URL": base, "LETHE_KAFKA_BROKERS": "k:9092", "LETHE_SIGNING_KEY": signingKey}))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := plain.Kafka.SASL.Build(); plain.Kafka.TLS.Config() != nil || plain.Temporal.TLS.Config() != nil || m != nil {
		t.Fatal("TLS or SASL on without being configured")
	}
}

// lethe dev writes its configuration back to YAML: the link settings and token secrets survive.
func TestLinkSettingsRoundTripThroughYAML(t *testing.T) {
	p := writeFile(t, `
kafka: {sasl: {mechanism: SCRAM-SHA-512, username: lethe, password: {file: /run/secrets/kafka}}}
tenants: [{id: a, regime: gdpr, dpo_email: dpo@a.example, tokens: [{role: admin, env: A_TOKEN}]}]
`)
	var cfg config.Config
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := config.Parse(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back config.Config
	if err := config.Parse(out, &back); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if back.Kafka.SASL.Password.File != "/run/secrets/kafka" || back.Kafka.SASL.Username != "lethe" ||
		back.Tenants[0].Tokens[0].Role != "admin" || back.Tenants[0].Tokens[0].Env != "A_TOKEN" {
		t.Fatalf("lost in the round trip:\n%s", out)
	}
}
