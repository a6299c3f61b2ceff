package texts_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/texts"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
)

const (
	account = "AC0123456789abcdef0123456789abcdef"
	token   = "stand-in-auth-token"
	sender  = "+15005550006"
	phone   = "+15555550100"
)

func load(t *testing.T, base string) *config.Config {
	t.Helper()
	t.Setenv("TWILIO_TOKEN", token) // the instance reads its token when opened, as in the worker
	path := filepath.Join(t.TempDir(), "lethe.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
kafka: {brokers: ["k:9092"]}
database: {url: "postgres://lethe@localhost/lethe"}
tenants:
  - {id: salon, regime: gdpr, dpo_email: dpo@salon.example, sms: salon-sms}
  - {id: studio, regime: gdpr, dpo_email: dpo@studio.example}
connectors:
  - name: salon-sms
    type: sms
    tenants: [salon]
    config: {account_sid: `+account+`, auth_token_env: TWILIO_TOKEN, base_url: "`+base+`", senders: {salon: {from: "`+sender+`"}}}
`), 0o600))
	cfg, err := config.LoadFrom(path, func(k string) (string, bool) {
		v, ok := map[string]string{"TWILIO_TOKEN": token, "LETHE_SIGNING_KEY": "0123456789abcdef0123456789abcdef"}[k]
		return v, ok
	})
	require.NoError(t, err)
	return &cfg
}

// A tenant's text goes from its sender through its sms instance, and Sent finds exactly that
// text afterwards (and no other), which is how an unanswered send is settled without a second.
func TestSendAndFindATenantsText(t *testing.T) {
	srv := twiliostandin.New(account, token)
	t.Cleanup(srv.Stop)
	s := texts.New(load(t, srv.URL()))
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()

	assert.True(t, s.Enabled("salon"))
	assert.False(t, s.Enabled("studio"))
	_, found, err := s.Sent(ctx, "salon", phone, "Your code is 123456")
	require.NoError(t, err)
	assert.False(t, found, "nothing sent yet")

	sid, err := s.Send(ctx, "salon", "r1:code", phone, "Your code is 123456")
	require.NoError(t, err)
	msgs := srv.Messages(phone)
	require.Len(t, msgs, 1)
	assert.Equal(t, sender, msgs[0].From)
	assert.Equal(t, "Your code is 123456", msgs[0].Body)

	got, found, err := s.Sent(ctx, "salon", phone, "Your code is 123456")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, sid, got)
	_, found, err = s.Sent(ctx, "salon", phone, "Your code is 654321")
	require.NoError(t, err)
	assert.False(t, found, "another body is another text")

	_, err = s.Send(ctx, "studio", "r2:code", phone, "hello")
	require.ErrorIs(t, err, texts.ErrNoSender)
	assert.True(t, connectors.IsPermanent(err))
}
