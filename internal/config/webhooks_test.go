package config_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/config"
)

// Webhook subscriptions and delivery settings are checked at start; each mistake is one line
// naming the setting.
func TestWebhookSettingsAreValidatedAtStart(t *testing.T) {
	const good = `
      - name: zapier
        url: https://hooks.example.com/catch
        events: ["request.*", breach.opened]
        secret: {env: HOOK_SECRET}`
	load := func(hooks, top string, vars map[string]string) (config.Config, error) {
		p := writeFile(t, `
database: {url: "`+base+`"}
`+top+`
tenants:
  - id: salon
    regime: gdpr
    dpo_email: dpo@salon.example
    webhooks:`+hooks+"\n")
		all := map[string]string{"LETHE_SIGNING_KEY": signingKey, "LETHE_KAFKA_BROKERS": "k:9092", "HOOK_SECRET": "0123456789abcdef0123"}
		for k, v := range vars {
			all[k] = v
		}
		return config.LoadFrom(p, env(all))
	}
	cfg, err := load(good, "", nil)
	require.NoError(t, err)
	w := cfg.Tenants[0].Webhooks[0]
	assert.Equal(t, "0123456789abcdef0123", w.Secret.Value())
	assert.True(t, w.Wants("request.status_changed"))
	assert.True(t, w.Wants("breach.opened"))
	assert.False(t, w.Wants("breach.clock_reminder"))
	assert.Equal(t, 8, cfg.Webhooks.MaxAttempts)
	assert.Equal(t, 30*time.Second, cfg.Webhooks.Backoff)

	cfg, err = load(strings.Replace(good, "https://hooks.example.com", "http://127.0.0.1:9000", 1), "webhooks: {allow_private: true}", nil)
	require.NoError(t, err, "a private address is allowed when the instance allows it")
	assert.True(t, cfg.Webhooks.AllowPrivate)

	for name, c := range map[string]struct {
		hooks, top string
		vars       map[string]string
		want       string
	}{
		"no secret":     {good, "", map[string]string{"HOOK_SECRET": ""}, "tenants[salon].webhooks[zapier].secret: environment variable HOOK_SECRET is not set"},
		"short secret":  {good, "", map[string]string{"HOOK_SECRET": "short"}, "tenants[salon].webhooks[zapier].secret: must be at least 16 characters"},
		"not http":      {strings.Replace(good, "https://", "ftp://", 1), "", nil, "tenants[salon].webhooks[zapier].url: not an http(s) URL"},
		"loopback":      {strings.Replace(good, "hooks.example.com", "127.0.0.1", 1), "", nil, "tenants[salon].webhooks[zapier].url: refusing to reach 127.0.0.1"},
		"metadata":      {strings.Replace(good, "hooks.example.com", "169.254.169.254", 1), "", nil, "refusing to reach 169.254.169.254"},
		"localhost":     {strings.Replace(good, "hooks.example.com", "localhost", 1), "", nil, "refusing to reach localhost"},
		"bad event":     {strings.Replace(good, "breach.opened", "Breach Opened", 1), "", nil, `tenants[salon].webhooks[zapier].events: "Breach Opened" is not an event type`},
		"twice":         {good + good, "", nil, `tenants[salon].webhooks[1].name: "zapier" appears twice`},
		"bad name":      {strings.Replace(good, "zapier", "Zapier!", 1), "", nil, `tenants[salon].webhooks[0].name: "Zapier!" must be`},
		"attempts":      {good, "", map[string]string{"LETHE_WEBHOOKS_MAX_ATTEMPTS": "0"}, "webhooks.max_attempts (LETHE_WEBHOOKS_MAX_ATTEMPTS): 0 must be between 1 and 100"},
		"backoff":       {good, "", map[string]string{"LETHE_WEBHOOKS_BACKOFF": "soon"}, `webhooks.backoff (LETHE_WEBHOOKS_BACKOFF): "soon" is not a duration`},
		"backoff order": {good, "webhooks: {backoff: 2h}", nil, "webhooks.max_backoff: 1h0m0s is shorter than webhooks.backoff 2h0m0s"},
		"private env":   {good, "", map[string]string{"LETHE_WEBHOOKS_ALLOW_PRIVATE": "maybe"}, `webhooks.allow_private (LETHE_WEBHOOKS_ALLOW_PRIVATE): "maybe" is not true or false`},
	} {
		_, err := load(c.hooks, c.top, c.vars)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.NotContains(t, err.Error(), "\n", name)
	}
}

// A webhook connector instance may serve only some actions: its config's capabilities are what
// its tenants' requests fan out to it, and one the type cannot serve stops the start.
func TestWebhookInstanceCapabilities(t *testing.T) {
	load := func(caps string) (config.Config, error) {
		p := writeFile(t, `
database: {url: "`+base+`"}
tenants: [{id: salon, regime: gdpr, dpo_email: dpo@salon.example}]
connectors:
  - name: shop
    type: webhook
    tenants: [salon]
    config: {url: "https://shop.example.com/lethe", secret_env: SHOP_SECRET`+caps+`}
`)
		return config.LoadFrom(p, env(map[string]string{"LETHE_SIGNING_KEY": signingKey, "LETHE_KAFKA_BROKERS": "k:9092"}))
	}
	cfg, err := load(", capabilities: [erase, block_check]")
	require.NoError(t, err)
	assert.Equal(t, "[erase block_check]", fmt.Sprint(cfg.Connectors[0].Capabilities()))
	cfg, err = load("")
	require.NoError(t, err)
	assert.Len(t, cfg.Connectors[0].Capabilities(), 6, "every action by default")
	_, err = load(", capabilities: [purge]")
	require.ErrorContains(t, err, `connectors[shop].config.capabilities: "purge" is not one a webhook connector serves`)
}
