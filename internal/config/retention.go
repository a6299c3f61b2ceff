package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
)

// Retention is a tenant's retention policy: the rules its connectors' purge runs, every day on
// a Temporal Schedule, and by hand with lethe retention run. Closed requests' exports expire
// after exports.expire_after_days in every run too (the same expiry as each export's own).
type Retention struct {
	// Hour is the hour (UTC) at which the daily run starts (default 3).
	Hour *int `yaml:"hour"`
	// BatchesPerCommand bounds each purge command, so progress is reported and recorded between
	// commands (default 10).
	BatchesPerCommand int             `yaml:"batches_per_command"`
	Rules             []RetentionRule `yaml:"rules"`
}

// RetentionRule is one of the tenant's rules: a retention rule of one connector instance
// (its configuration says which rows and how: delete, anonymise, erase), run with the
// tenant's period.
type RetentionRule struct {
	// Name is the rule's name in the connector's configuration.
	Name      string `yaml:"name"`
	Connector string `yaml:"connector"`
	// After is how long the rows are kept: 30d, 3y (365 days each) or a Go duration.
	After connectors.Period `yaml:"after"`
}

// DefaultRetentionHour is when a tenant's daily retention run starts, unless it says.
const DefaultRetentionHour = 3

// RunHour is the hour (UTC) of the daily run.
func (r Retention) RunHour() int {
	if r.Hour == nil {
		return DefaultRetentionHour
	}
	return *r.Hour
}

// Batches is how many batches one purge command may run.
func (r Retention) Batches() int {
	if r.BatchesPerCommand == 0 {
		return 10
	}
	return r.BatchesPerCommand
}

// validateRetention checks tenant t's retention rules against the connector instances.
func (c *Config) validateRetention(t Tenant) error {
	r := t.Retention
	if r == nil {
		return nil
	}
	at := func(s string) string { return fmt.Sprintf("tenants[%s].retention.%s", t.ID, s) }
	if h := r.RunHour(); h < 0 || h > 23 {
		return fmt.Errorf("%s: %d must be an hour from 0 to 23 (UTC)", at("hour"), h)
	}
	if r.BatchesPerCommand < 0 {
		return fmt.Errorf("%s: must be positive", at("batches_per_command"))
	}
	seen := map[string]bool{}
	for i, rule := range r.Rules {
		where := at(fmt.Sprintf("rules[%d]", i))
		if !connectorName.MatchString(rule.Name) {
			return fmt.Errorf("%s.name: %q must name a retention rule of the connector (lower case, digits, - or _)", where, rule.Name)
		}
		i := slices.IndexFunc(c.Connectors, func(in Connector) bool { return in.Name == rule.Connector })
		if i < 0 {
			return fmt.Errorf("%s.connector: %q is not a configured connector", where, rule.Connector)
		}
		in := c.Connectors[i]
		if !in.Serves(t.ID) {
			return fmt.Errorf("%s.connector: %s does not serve tenant %s (its tenants list)", where, in.Name, t.ID)
		}
		if !slices.Contains(in.Capabilities(), connectors.CapPurge) {
			return fmt.Errorf("%s.connector: %s cannot purge (it has no purge capability)", where, in.Name)
		}
		if time.Duration(rule.After) < time.Hour {
			return fmt.Errorf("%s.after: %s is under an hour; write a period such as 30d or 3y", where, time.Duration(rule.After))
		}
		key := rule.Connector + "/" + rule.Name
		if seen[key] {
			return fmt.Errorf("%s: rule %s of %s appears twice", where, rule.Name, rule.Connector)
		}
		seen[key] = true
	}
	return nil
}

// Purgers are the names of the instances among ins that serve tenant and purge, in order: where
// a subject whose expiry date passed is purged.
func Purgers(ins []Connector, tenant string) []string {
	var out []string
	for _, in := range ins {
		if in.Serves(tenant) && slices.Contains(in.Capabilities(), connectors.CapPurge) {
			out = append(out, in.Name)
		}
	}
	return out
}
