package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/config"
)

// Socket Mode needs an app-level token; a wrong mode or token is one line naming the setting.
func TestSlackSocketModeIsValidatedAtStart(t *testing.T) {
	load := func(extra string, appToken string) (config.Config, error) {
		p := writeFile(t, `
database: {url: "`+base+`"}
tenants:
  - id: salon
    regime: gdpr
    dpo_email: dpo@salon.example
    slack:
      bot_token: {env: SLACK_BOT}
      signing_secret: {env: SLACK_SECRET}
      approval_channel: C0APPROVALS
      approvers: [{users: [U0ANNA]}]`+extra+"\n")
		return config.LoadFrom(p, env(map[string]string{"LETHE_SIGNING_KEY": signingKey, "LETHE_KAFKA_BROKERS": "k:9092",
			"SLACK_BOT": "xoxb-1-2-3", "SLACK_SECRET": "0123456789abcdef0123", "SLACK_APP": appToken}))
	}
	cfg, err := load("\n      mode: socket\n      app_token: {env: SLACK_APP}", "xapp-1-A0-1-abc")
	require.NoError(t, err)
	assert.True(t, cfg.Tenants[0].Slack.Socket())
	assert.Equal(t, "xapp-1-A0-1-abc", cfg.Tenants[0].Slack.AppToken.Value())
	cfg, err = load("", "")
	require.NoError(t, err)
	assert.False(t, cfg.Tenants[0].Slack.Socket(), "http is the default")

	for name, c := range map[string]struct{ extra, token, want string }{
		"socket without a token":   {"\n      mode: socket", "", "tenants[salon].slack.app_token: Socket Mode needs an app-level token"},
		"a bot token as app token": {"\n      mode: socket\n      app_token: {env: SLACK_APP}", "xoxb-9", "tenants[salon].slack.app_token: is not an app-level token"},
		"unknown mode":             {"\n      mode: websocket", "", `tenants[salon].slack.mode: "websocket" must be http or socket`},
	} {
		_, err := load(c.extra, c.token)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.NotContains(t, err.Error(), "\n", name)
	}
}
