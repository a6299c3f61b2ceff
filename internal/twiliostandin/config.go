package twiliostandin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lethe-privacy/lethe/internal/config"
)

// Test account of SalonConfig: the stand-in's account, token and the salon's sender.
const (
	TestAccount = "AC0123456789abcdef0123456789abcdef"
	TestToken   = "stand-in-auth-token"
	TestSender  = "+15005550006"
)

// SalonConfig is a Lethe configuration whose tenant salon ("Salon Example") sends its texts
// through the sms instance salon-sms on s, from TestSender; s must be New(TestAccount,
// TestToken). The instance's token variable is set for the test, as the worker's would be.
func SalonConfig(t testing.TB, s *Server) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lethe.yaml")
	err := os.WriteFile(path, []byte(`
kafka: {brokers: ["k:9092"]}
database: {url: "postgres://lethe@localhost/lethe"}
tenants:
  - {id: salon, name: Salon Example, regime: gdpr, dpo_email: dpo@salon.example, sms: salon-sms}
  - {id: studio, regime: gdpr, dpo_email: dpo@studio.example}
connectors:
  - name: salon-sms
    type: sms
    tenants: [salon]
    config: {account_sid: `+TestAccount+`, auth_token_env: TWILIO_TOKEN, base_url: "`+s.URL()+`", senders: {salon: {from: "`+TestSender+`"}}}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TWILIO_TOKEN", TestToken) // read when the instance opens
	cfg, err := config.LoadFrom(path, func(k string) (string, bool) {
		v, ok := map[string]string{"TWILIO_TOKEN": TestToken, "LETHE_SIGNING_KEY": "0123456789abcdef0123456789abcdef"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("loading the texting salon's configuration: %v", err)
	}
	return &cfg
}
