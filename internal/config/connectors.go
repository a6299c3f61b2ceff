package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/connectors"
)

// TypeRemote is the type of an instance served by a program of its own over Kafka (any
// language): Lethe only publishes its commands and reads its results.
const TypeRemote = "remote"

// Connector is one connector instance: a connector type serving some tenants under a name of
// its own, so two tenants can have two accounts of one system, or one business two databases.
type Connector struct {
	// Name names the instance: its command topic lethe.connector.<name>.commands, its keys
	// secrets.connector_keys.<name> and its runner, lethe connector <name>.
	Name string `yaml:"name"`
	// Type is a connector compiled into lethe (database, sms) or remote.
	Type string `yaml:"type"`
	// Tenants are the tenants whose requests reach this instance; ["*"] is every tenant.
	Tenants []string `yaml:"tenants"`
	// Config is the type's own configuration (for database see deploy/demo/
	// database-connector.yaml; for remote, RemoteConfig).
	Config yaml.Node `yaml:"config,omitempty"`
	// ConsentPurpose, when set, makes every notify to this instance wait for the subject's
	// current consent to that purpose (e.g. marketing_email): without it the notify is refused
	// and the refusal audited, before any command leaves Lethe.
	ConsentPurpose string `yaml:"consent_purpose,omitempty"`
}

// consentPurpose is a purpose as lethe.consent.change carries it.
var consentPurpose = regexp.MustCompile(`^[a-z][a-z0-9_]{1,63}$`)

// RemoteConfig is the configuration of a remote instance: what its program serves.
type RemoteConfig struct {
	Capabilities []connectors.Capability `yaml:"capabilities"`
}

// connectorName becomes part of a topic name, hence lower case.
var connectorName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Remote reports whether the instance is served by a program of its own.
func (in Connector) Remote() bool { return in.Type == TypeRemote }

// Serves reports whether the tenant's requests reach this instance.
func (in Connector) Serves(tenant string) bool {
	return slices.Contains(in.Tenants, "*") || slices.Contains(in.Tenants, tenant)
}

// Capabilities are what the instance can do: its type's, or a remote one's as configured.
func (in Connector) Capabilities() []connectors.Capability {
	if in.Remote() {
		rc, _ := in.remote() // checked by Validate
		return rc.Capabilities
	}
	info, _ := connectors.Lookup(in.Type)
	if info.Scoped {
		if caps, err := in.scope(); err == nil && len(caps) > 0 { // checked by Validate
			return caps
		}
	}
	return info.Capabilities
}

// scope is the capabilities listed in a scoped type's config, which may list only some of
// the type's; the rest of that config is the connector's own, checked when it is opened.
func (in Connector) scope() ([]connectors.Capability, error) {
	raw, err := in.ConfigYAML()
	if err != nil {
		return nil, err
	}
	var sc struct {
		Capabilities []connectors.Capability `yaml:"capabilities"`
	}
	if err := yaml.Unmarshal(raw, &sc); err != nil {
		return nil, errors.New(yamlValue.ReplaceAllString(oneLine(err.Error()), "(value withheld)"))
	}
	return sc.Capabilities, nil
}

// ConfigYAML is the raw YAML of the instance's own configuration, for connectors.Open; nil
// when none is set, which leaves the type's defaults.
func (in Connector) ConfigYAML() ([]byte, error) {
	if in.Config.Kind == 0 {
		return nil, nil
	}
	return yaml.Marshal(&in.Config)
}

func (in Connector) remote() (RemoteConfig, error) {
	var rc RemoteConfig
	raw, err := in.ConfigYAML()
	if err != nil {
		return rc, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rc); err != nil && !errors.Is(err, io.EOF) {
		return rc, errors.New(yamlValue.ReplaceAllString(oneLine(err.Error()), "(value withheld)"))
	}
	return rc, nil
}

// Connector returns the instance called name.
func (c *Config) Connector(name string) (Connector, bool) {
	for _, in := range c.Connectors {
		if in.Name == name {
			return in, true
		}
	}
	return Connector{}, false
}

// Served returns the instance that lethe connector NAME serves: one configured under that
// name, of a type compiled into lethe.
func (c *Config) Served(name string) (Connector, error) {
	in, ok := c.Connector(name)
	if !ok {
		return in, fmt.Errorf("connectors: no instance named %q (configured: %s)", name, strings.Join(c.CommandConnectors(), ", "))
	}
	if in.Remote() {
		return in, fmt.Errorf("connectors[%s]: a remote connector is served by its own program, not by lethe connector", name)
	}
	return in, nil
}

// ConnectorsFor lists the instances a tenant's requests fan out to, in the order configured.
func (c *Config) ConnectorsFor(tenant string) []Connector {
	var out []Connector
	for _, in := range c.Connectors {
		if in.Serves(tenant) {
			out = append(out, in)
		}
	}
	return out
}

// CommandConnectors lists every instance, sorted: each has its own command topic and keys.
func (c *Config) CommandConnectors() []string {
	var names []string
	for _, in := range c.Connectors {
		names = append(names, in.Name)
	}
	slices.Sort(names)
	return names
}

// ConnectorTypes are the types an instance may have: those compiled into this lethe, and remote.
func ConnectorTypes() []string {
	types := append(connectors.Names(), TypeRemote)
	slices.Sort(types)
	return types
}

func (c *Config) validateConnectors() error {
	var tenants []string
	for _, t := range c.Tenants {
		tenants = append(tenants, t.ID)
	}
	seen := map[string]bool{}
	for i, in := range c.Connectors {
		if !connectorName.MatchString(in.Name) {
			return fmt.Errorf("connectors[%d].name: %q must be lower-case letters, digits, - or _, starting with a letter: it names the topic lethe.connector.<name>.commands", i, in.Name)
		}
		if seen[in.Name] {
			return fmt.Errorf("connectors[%d].name: %q appears twice; each instance needs a name of its own", i, in.Name)
		}
		seen[in.Name] = true
		at := "connectors[" + in.Name + "]"
		if !slices.Contains(ConnectorTypes(), in.Type) {
			return fmt.Errorf("%s.type: %q is not a connector type of this lethe; use one of %s", at, in.Type, strings.Join(ConnectorTypes(), ", "))
		}
		if len(in.Tenants) == 0 {
			return fmt.Errorf(`%s.tenants: not set; list the tenants whose requests reach %s, or ["*"] for every tenant`, at, in.Name)
		}
		for _, t := range in.Tenants {
			if t == "*" && len(in.Tenants) > 1 {
				return fmt.Errorf(`%s.tenants: "*" already means every tenant; list tenants or "*", not both`, at)
			}
			if t != "*" && !slices.Contains(tenants, t) {
				return fmt.Errorf("%s.tenants: %q is not a tenant of this configuration (tenants: %s)", at, t, strings.Join(tenants, ", "))
			}
		}
		if in.Remote() {
			if err := in.validateRemote(at); err != nil {
				return err
			}
		}
		if in.ConsentPurpose != "" {
			if !consentPurpose.MatchString(in.ConsentPurpose) {
				return fmt.Errorf("%s.consent_purpose: %q is not a consent purpose (lower-case letters, digits and _, e.g. marketing_email)", at, in.ConsentPurpose)
			}
			if !slices.Contains(in.Capabilities(), connectors.CapNotify) {
				return fmt.Errorf("%s.consent_purpose: the instance cannot notify, so there is nothing for consent to allow; remove it or use an instance that notifies", at)
			}
		}
		if info, _ := connectors.Lookup(in.Type); info.Scoped {
			caps, err := in.scope()
			if err != nil {
				return fmt.Errorf("%s.config: %v", at, err)
			}
			for _, c := range caps {
				if !info.Has(c) {
					return fmt.Errorf("%s.config.capabilities: %q is not one a %s connector serves (%v)", at, c, in.Type, info.Capabilities)
				}
			}
		}
	}
	return nil
}

func (in Connector) validateRemote(at string) error {
	rc, err := in.remote()
	if err != nil {
		return fmt.Errorf("%s.config: %v", at, err)
	}
	var all []string
	for _, c := range connectors.AllCapabilities {
		all = append(all, string(c))
	}
	if len(rc.Capabilities) == 0 {
		return fmt.Errorf("%s.config.capabilities: list what the connector's program serves, some of %s", at, strings.Join(all, ", "))
	}
	for _, c := range rc.Capabilities {
		if !c.Valid() {
			return fmt.Errorf("%s.config.capabilities: %q is not one of %s", at, c, strings.Join(all, ", "))
		}
	}
	return nil
}

// oldConnectorForms refuses the configuration of Lethe before connector instances (a map
// under connectors:, and remote_connectors:) with one line showing the form that replaced it.
func oldConnectorForms(data []byte) error {
	var top map[string]yaml.Node
	_ = yaml.Unmarshal(data, &top) // anything unreadable is reported by the strict decode
	if n, ok := top["remote_connectors"]; ok {
		name, caps := "newsletter", "access, erase"
		if n.Kind == yaml.SequenceNode && len(n.Content) > 0 {
			var first struct {
				Name         string                  `yaml:"name"`
				Capabilities []connectors.Capability `yaml:"capabilities"`
			}
			if n.Content[0].Decode(&first) == nil && connectorName.MatchString(first.Name) && len(first.Capabilities) > 0 &&
				!slices.ContainsFunc(first.Capabilities, func(c connectors.Capability) bool { return !c.Valid() }) {
				name, caps = first.Name, fmt.Sprint(first.Capabilities)
				caps = strings.ReplaceAll(strings.Trim(caps, "[]"), " ", ", ")
			}
		}
		return fmt.Errorf(`remote_connectors: no longer read; declare each as a connector instance of type remote: connectors: [{name: %s, type: remote, tenants: ["*"], config: {capabilities: [%s]}}]`, name, caps)
	}
	if n, ok := top["connectors"]; ok && n.Kind == yaml.MappingNode {
		typ := "database" // the old form was keyed by type
		if len(n.Content) > 0 && connectorName.MatchString(n.Content[0].Value) {
			typ = n.Content[0].Value
		}
		return fmt.Errorf(`connectors: the map form (connectors: {%[1]s: {...}}) is no longer read; list instances, each with its type and tenants: connectors: [{name: %[1]s, type: %[1]s, tenants: ["*"], config: {...}}]`, typ)
	}
	return nil
}
