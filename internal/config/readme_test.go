package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/config"
)

// The README's configuration example is what operators copy: it must load as written, every
// key known, and mean what its comments say.
func TestREADMEConfigurationExampleParses(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## Configuration\n")
	require.True(t, ok, "README has no Configuration section")
	_, example, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok, "the Configuration section has no YAML example")
	example, _, ok = strings.Cut(example, "```")
	require.True(t, ok, "the YAML example is not closed")

	cfg := config.Defaults()
	require.NoError(t, config.Parse([]byte(example), &cfg))
	require.NoError(t, cfg.Validate())

	assert.Equal(t, []string{"10.0.0.0/8"}, cfg.HTTP.TrustedProxies)
	assert.Equal(t, 168*time.Hour, cfg.Kafka.Retention.Commands)
	assert.Equal(t, 720*time.Hour, cfg.Kafka.Retention.Events)
	assert.Equal(t, "SCRAM-SHA-512", cfg.Kafka.SASL.Mechanism)
	assert.Equal(t, "staging-", cfg.Kafka.TopicPrefix)
	assert.True(t, cfg.Kafka.TLS.Enabled)
	assert.Equal(t, 30, cfg.Exports.ExpireAfterDays)
	assert.Len(t, cfg.Secrets.ConnectorKeys["newsletter"], 2)
	require.Len(t, cfg.Tenants, 1)
	assert.Equal(t, "dpo@salon.example", cfg.Tenants[0].DPOAddress())
	assert.Equal(t, "team@salon.example", cfg.Tenants[0].StaffAddress())
	require.NotNil(t, cfg.Tenants[0].Retention)
	assert.Equal(t, 3*365*24*time.Hour, time.Duration(cfg.Tenants[0].Retention.Rules[0].After))
}
