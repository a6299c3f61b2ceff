package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/config"
)

// A tenant's Slack settings are checked at start; each mistake is one line naming the setting.
func TestSlackSettingsAreValidatedAtStart(t *testing.T) {
	const good = `
      bot_token: {env: SLACK_BOT}
      signing_secret: {env: SLACK_SECRET}
      approval_channel: C0APPROVALS
      approvers: [{types: [erasure], users: [U0ANNA], group: S0PRIVACY}]`
	load := func(slack string, vars map[string]string) (config.Config, error) {
		p := writeFile(t, `
database: {url: "`+base+`"}
slack: {api_url: "http://127.0.0.1:9/api/"}
tenants:
  - id: salon
    regime: gdpr
    dpo_email: dpo@salon.example
    slack:`+slack+"\n")
		all := map[string]string{"LETHE_SIGNING_KEY": signingKey, "LETHE_KAFKA_BROKERS": "k:9092", "SLACK_BOT": "xoxb-1-2-3", "SLACK_SECRET": "0123456789abcdef0123"}
		for k, v := range vars {
			all[k] = v
		}
		return config.LoadFrom(p, env(all))
	}
	cfg, err := load(good, nil)
	require.NoError(t, err)
	s := cfg.Tenants[0].Slack
	assert.Equal(t, "xoxb-1-2-3", s.BotToken.Value())
	users, groups := s.ApproversOf("erasure")
	assert.Equal(t, []string{"U0ANNA"}, users)
	assert.Equal(t, []string{"S0PRIVACY"}, groups)
	users, _ = s.ApproversOf("access")
	assert.Empty(t, users)

	for name, c := range map[string]struct {
		slack string
		vars  map[string]string
		want  string
	}{
		"no token":       {good, map[string]string{"SLACK_BOT": ""}, "tenants[salon].slack.bot_token: environment variable SLACK_BOT is not set"},
		"user token":     {good, map[string]string{"SLACK_BOT": "xoxp-1"}, "tenants[salon].slack.bot_token: is not a bot token"},
		"short secret":   {good, map[string]string{"SLACK_SECRET": "short"}, "tenants[salon].slack.signing_secret: is shorter than 16"},
		"channel name":   {strings.Replace(good, "C0APPROVALS", "privacy", 1), nil, `tenants[salon].slack.approval_channel: "privacy" is not a channel ID`},
		"user name":      {strings.Replace(good, "U0ANNA", "anna", 1), nil, `tenants[salon].slack.approvers[0].users: "anna" is not a Slack user ID`},
		"group name":     {strings.Replace(good, "S0PRIVACY", "privacy-team", 1), nil, `tenants[salon].slack.approvers[0].group: "privacy-team" is not a user group ID`},
		"unknown type":   {strings.Replace(good, "[erasure]", "[erase]", 1), nil, `tenants[salon].slack.approvers[0].types: "erase" must be one of`},
		"nobody":         {strings.Replace(good, "[{types: [erasure], users: [U0ANNA], group: S0PRIVACY}]", "[]", 1), nil, "tenants[salon].slack.approvers: nobody may decide"},
		"an empty entry": {strings.Replace(good, "users: [U0ANNA], group: S0PRIVACY", "users: []", 1), nil, "tenants[salon].slack.approvers[0]: names neither users nor a group"},
		"dpo user name":  {good + "\n      dpo_user: dana", nil, `tenants[salon].slack.dpo_user: "dana" is not a Slack user ID`},
		"api url":        {good, map[string]string{"LETHE_SLACK_API_URL": "slack.test"}, `slack.api_url (LETHE_SLACK_API_URL): "slack.test" is not an http(s) URL`},
	} {
		_, err := load(c.slack, c.vars)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.NotContains(t, err.Error(), "\n", name)
	}
}
