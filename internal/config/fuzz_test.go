package config_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/internal/config"
)

// FuzzParse: any configuration file is refused with one line naming the problem, or accepted;
// an accepted configuration written back as YAML (as lethe dev writes dev.yaml) reads back
// as the same configuration and passes the same validation.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`
http: {addr: "0.0.0.0:9000"}
kafka: {brokers: ["k:9092"], partitions: 6}
database: {url: "postgres://lethe@127.0.0.1:5432/lethe"}
tenants:
  - id: salon
    regime: gdpr
    country: FR
    time_zone: Europe/Paris
    dpo_email: dpo@salon.example
    policy: {manual_approval: [erasure]}
    tokens: [{role: dpo, env: SALON_DPO_TOKEN}]
connectors:
  - {name: salon-db, type: database, tenants: [salon], config: {dsn_env: X}}
`))
	f.Add([]byte("tenants: [{id: a, country: ZZ}]"))
	f.Add([]byte("kafka: {retention: {commands: -1h}}"))
	f.Add([]byte("http: {addr: ':'}\nunknown: 1"))
	f.Add([]byte("tenants:\n  - &a {id: x}\n  - *a\n"))
	f.Add([]byte("\t- [\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := config.Defaults()
		if err := config.Parse(data, &cfg); err != nil {
			if !strings.HasPrefix(err.Error(), "invalid YAML: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("unclear error: %q", err)
			}
			return
		}
		verr := cfg.Validate()
		if verr != nil && (verr.Error() == "" || strings.Contains(verr.Error(), "\n")) {
			t.Fatalf("unclear validation error: %q", verr)
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("writing an accepted configuration back: %v", err)
		}
		again := config.Defaults()
		if err := config.Parse(out, &again); err != nil {
			t.Fatalf("a configuration Lethe wrote does not read back: %v\n%s", err, out)
		}
		// Compared as YAML: an empty list and a missing one are the same setting.
		if back, err := yaml.Marshal(again); err != nil || string(back) != string(out) {
			t.Fatalf("the configuration changed on its way through YAML (%v):\n%s\n---\n%s", err, out, back)
		}
		if err := again.Validate(); (err == nil) != (verr == nil) {
			t.Fatalf("validation changed on the way through YAML: %v, then %v", verr, err)
		}
	})
}
