package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/config"
)

// A tenant's retention rules are checked at start against the connector instances; each
// mistake stops the start with one line naming the setting.
func TestRetentionRulesAreValidatedAtStart(t *testing.T) {
	const good = `
      hour: 4
      rules:
        - {name: inactive_customers, connector: salon-db, after: 3y}
        - {name: past_bookings, connector: salon-db, after: 30d}`
	load := func(retention string) (config.Config, error) {
		p := writeFile(t, `
database: {url: "`+base+`"}
connectors:
  - {name: salon-db, type: database, tenants: [salon]}
  - {name: other-db, type: database, tenants: [other]}
  - {name: notes, type: remote, tenants: [salon], config: {capabilities: [access]}}
secrets:
  connector_keys:
    notes: [{id: k1, env: NOTES_KEY}]
tenants:
  - id: salon
    regime: gdpr
    dpo_email: dpo@salon.example
    retention:`+retention+`
  - id: other
    regime: gdpr
    dpo_email: dpo@other.example
`)
		return config.LoadFrom(p, env(map[string]string{"LETHE_SIGNING_KEY": signingKey, "LETHE_KAFKA_BROKERS": "k:9092",
			"NOTES_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}))
	}
	cfg, err := load(good)
	require.NoError(t, err)
	r := cfg.Tenants[0].Retention
	assert.Equal(t, 4, r.RunHour())
	assert.Equal(t, 10, r.Batches())
	assert.Equal(t, 3*365*24*time.Hour, time.Duration(r.Rules[0].After))
	assert.Equal(t, 30*24*time.Hour, time.Duration(r.Rules[1].After))
	assert.Nil(t, cfg.Tenants[1].Retention)

	for name, c := range map[string]struct{ retention, want string }{
		"hour":         {strings.Replace(good, "hour: 4", "hour: 24", 1), "tenants[salon].retention.hour: 24 must be an hour from 0 to 23"},
		"period":       {strings.Replace(good, "after: 3y", "after: 3 years", 1), `period "3 years": want a duration such as 720h, 730d or 3y`},
		"short":        {strings.Replace(good, "after: 30d", "after: 5m", 1), "tenants[salon].retention.rules[1].after: 5m0s is under an hour"},
		"no connector": {strings.Replace(good, "connector: salon-db, after: 3y", "connector: salon_db, after: 3y", 1), `tenants[salon].retention.rules[0].connector: "salon_db" is not a configured connector`},
		"not served":   {strings.Replace(good, "connector: salon-db, after: 3y", "connector: other-db, after: 3y", 1), "tenants[salon].retention.rules[0].connector: other-db does not serve tenant salon"},
		"no purge":     {strings.Replace(good, "connector: salon-db, after: 3y", "connector: notes, after: 3y", 1), "tenants[salon].retention.rules[0].connector: notes cannot purge"},
		"twice":        {strings.Replace(good, "past_bookings", "inactive_customers", 1), "tenants[salon].retention.rules[1]: rule inactive_customers of salon-db appears twice"},
		"name":         {strings.Replace(good, "past_bookings", "Past Bookings", 1), `tenants[salon].retention.rules[1].name: "Past Bookings" must name`},
		"batches":      {good + "\n      batches_per_command: -1", "tenants[salon].retention.batches_per_command: must be positive"},
	} {
		_, err := load(c.retention)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), c.want, name)
		assert.NotContains(t, err.Error(), "\n", name)
	}
}
