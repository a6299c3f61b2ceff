package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/config"

	_ "github.com/lethe-privacy/lethe/connectors/builtin" // every registered connector type, as in lethe
)

const twoTenants = `
kafka: {brokers: ["k:9092"]}
database: {url: "` + base + `"}
tenants:
  - {id: salon, regime: gdpr, dpo_email: dpo@salon.example}
  - {id: studio, regime: gdpr, dpo_email: dpo@studio.example}
secrets: {connector_keys: {newsletter: [{id: k1, env: K1}]}}
`

func loadConnectors(t *testing.T, list string) (config.Config, error) {
	t.Helper()
	return config.LoadFrom(writeFile(t, twoTenants+"connectors: "+list), env(map[string]string{
		"K1": strings.Repeat("A", 43) + "=", "LETHE_SIGNING_KEY": signingKey,
	}))
}

// Each tenant's requests reach only the instances bound to it; "*" binds every tenant.
func TestConnectorInstancesAreBoundToTenants(t *testing.T) {
	cfg, err := loadConnectors(t, `
  - {name: salon-db, type: database, tenants: [salon], config: {dsn_env: SALON_DB}}
  - {name: studio-db, type: database, tenants: [studio], config: {dsn_env: STUDIO_DB}}
  - {name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [access, erase]}}
`)
	require.NoError(t, err)
	names := func(tenant string) []string {
		var out []string
		for _, in := range cfg.ConnectorsFor(tenant) {
			out = append(out, in.Name)
		}
		return out
	}
	assert.Equal(t, []string{"salon-db", "newsletter"}, names("salon"))
	assert.Equal(t, []string{"studio-db", "newsletter"}, names("studio"))
	assert.Equal(t, []string{"newsletter", "salon-db", "studio-db"}, cfg.CommandConnectors(), "each instance has its own command topic and keys")

	in, ok := cfg.Connector("newsletter")
	require.True(t, ok)
	assert.True(t, in.Remote())
	assert.Equal(t, []connectors.Capability{connectors.CapAccess, connectors.CapErase}, in.Capabilities())
	db, _ := cfg.Connector("studio-db")
	assert.Contains(t, db.Capabilities(), connectors.CapBlockCheck, "a Go instance can do what its type can")
	raw, err := db.ConfigYAML()
	require.NoError(t, err)
	assert.Contains(t, string(raw), "dsn_env: STUDIO_DB", "the instance's own config goes to its connector")
}

func TestConnectorInstanceErrorsNameTheSetting(t *testing.T) {
	for list, want := range map[string]string{
		`[{name: Salon DB, type: database, tenants: [salon]}]`:                                                                              `connectors[0].name: "Salon DB" must be lower-case letters, digits, - or _, starting with a letter: it names the topic lethe.connector.<name>.commands`,
		`[{name: salon.db, type: database, tenants: [salon]}]`:                                                                              `connectors[0].name: "salon.db" must be lower-case`,
		`[{type: database, tenants: [salon]}]`:                                                                                              `connectors[0].name: "" must be lower-case`,
		`[{name: db, type: database, tenants: [salon]}, {name: db, type: database, tenants: [studio]}]`:                                     `connectors[1].name: "db" appears twice; each instance needs a name of its own`,
		`[{name: db, type: salesforce, tenants: [salon]}]`:                                                                                  `connectors[db].type: "salesforce" is not a connector type of this lethe; use one of ` + strings.Join(config.ConnectorTypes(), ", "),
		`[{name: db, tenants: [salon]}]`:                                                                                                    `connectors[db].type: "" is not a connector type`,
		`[{name: db, type: database}]`:                                                                                                      `connectors[db].tenants: not set; list the tenants whose requests reach db, or ["*"] for every tenant`,
		`[{name: db, type: database, tenants: []}]`:                                                                                         `connectors[db].tenants: not set`,
		`[{name: db, type: database, tenants: [salon, spa]}]`:                                                                               `connectors[db].tenants: "spa" is not a tenant of this configuration (tenants: salon, studio)`,
		`[{name: db, type: database, tenants: ["*", salon]}]`:                                                                               `connectors[db].tenants: "*" already means every tenant; list tenants or "*", not both`,
		`[{name: newsletter, type: remote, tenants: ["*"]}]`:                                                                                `connectors[newsletter].config.capabilities: list what the connector's program serves, some of access, erase, rectify, restrict, block_check, notify, find, purge`,
		`[{name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [access, wipe]}}]`:                                        `connectors[newsletter].config.capabilities: "wipe" is not one of access, erase,`,
		`[{name: newsletter, type: remote, tenants: ["*"], config: {capabilites: [access]}}]`:                                               `connectors[newsletter].config: yaml: unmarshal errors: line 1: field capabilites not found`,
		`[{name: newsletter, type: database, tenants: ["*"]}, {name: news, type: remote, tenants: ["*"], config: {capabilities: [erase]}}]`: `secrets.connector_keys.news: remote connector news needs a key of its own`,
	} {
		_, err := loadConnectors(t, list)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\nerror %v\nwant  %q", list, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans several lines: %q", list, err)
		}
	}
}

// The configuration of Lethe before connector instances stops the start with one line that
// shows the new form, built from the old one's names.
func TestOldConnectorFormsAreRefusedShowingTheNewForm(t *testing.T) {
	for file, want := range map[string]string{
		"connectors:\n  database:\n    dsn_env: X\n": `invalid YAML: connectors: the map form (connectors: {database: {...}}) is no longer read; list instances, each with its type and tenants: connectors: [{name: database, type: database, tenants: ["*"], config: {...}}]`,
		"connectors: {}\n":                           `connectors: [{name: database, type: database, tenants: ["*"], config: {...}}]`,
		"remote_connectors: [{name: newsletter, capabilities: [access, erase, block_check]}]\n": `invalid YAML: remote_connectors: no longer read; declare each as a connector instance of type remote: connectors: [{name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [access, erase, block_check]}}]`,
		"remote_connectors: []\n": `remote_connectors: no longer read; declare each as a connector instance of type remote: connectors: [{name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [access, erase]}}]`,
	} {
		_, err := config.LoadFrom(writeFile(t, file), env(map[string]string{"LETHE_SIGNING_KEY": signingKey}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\nerror %v\nwant  %q", file, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error spans several lines: %q", file, err)
		}
	}
}

// A tenant's sms setting names an sms instance that serves it; anything else stops the start
// with the setting named.
func TestTenantSMSNamesAnSMSInstanceServingIt(t *testing.T) {
	instances := `
  - {name: salon-db, type: database, tenants: [salon], config: {dsn_env: SALON_DB}}
  - {name: salon-sms, type: sms, tenants: [salon], config: {account_sid: AC0123456789abcdef0123456789abcdef}}
  - {name: newsletter, type: remote, tenants: ["*"], config: {capabilities: [access, erase]}}
`
	load := func(sms string) error {
		t.Helper()
		cfg := strings.Replace(twoTenants, "{id: salon, regime: gdpr,", "{id: salon, regime: gdpr, sms: "+sms+",", 1)
		cfg = strings.Replace(cfg, "{id: studio, regime: gdpr,", "{id: studio, regime: gdpr, sms: salon-sms,", 1)
		_, err := config.LoadFrom(writeFile(t, cfg+"connectors: "+instances), env(map[string]string{
			"K1": strings.Repeat("A", 43) + "=", "LETHE_SIGNING_KEY": signingKey,
		}))
		return err
	}
	err := load("salon-sms")
	require.Error(t, err, "studio names an instance that does not serve it")
	assert.Equal(t, `tenants[studio].sms: instance "salon-sms" does not serve tenant studio (its tenants list)`, err.Error())

	instances = strings.Replace(instances, "tenants: [salon], config: {account", `tenants: ["*"], config: {account`, 1)
	require.NoError(t, load("salon-sms"))
	assert.ErrorContains(t, load("salon-db"), `tenants[salon].sms: instance "salon-db" is of type database, not sms`)
	assert.ErrorContains(t, load("nowhere"), `tenants[salon].sms: no connector instance named "nowhere"`)
}
