package connectors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"gopkg.in/yaml.v3"
)

// Config is a connector's typed configuration. NewConfig returns it with defaults set; Open
// decodes the YAML over those defaults, then calls Validate.
type Config interface {
	// Validate checks the configuration on its own, without contacting the system, and
	// returns an error a user can act on (naming the offending field).
	Validate() error
}

// Info describes a connector for the registry.
type Info struct {
	Name        string
	Description string
	// Capabilities must list exactly the role interfaces the connector implements.
	Capabilities []Capability
	// Scoped says an instance's config may narrow Capabilities with its own capabilities
	// list (the connector implements Scoped to match).
	Scoped bool
	// NewConfig returns a pointer to a config with defaults set.
	NewConfig func() Config
	// New builds the connector from a validated config. It should not contact the system:
	// that is Check's job.
	New func(Config) (Connector, error)
}

// Has reports whether the connector declares capability c.
func (i Info) Has(c Capability) bool { return slices.Contains(i.Capabilities, c) }

// The registry is the package's only mutable state: connectors add themselves from init().
var registry = struct {
	sync.RWMutex
	m map[string]Info
}{m: map[string]Info{}}

// Register adds a connector to the registry. It fails for an incomplete Info, an unknown
// capability or a name already taken.
func Register(info Info) error {
	if info.Name == "" {
		return errors.New("registering connector: empty name")
	}
	if info.NewConfig == nil || info.New == nil {
		return fmt.Errorf("registering connector %s: NewConfig and New are required", info.Name)
	}
	seen := map[Capability]bool{}
	for _, c := range info.Capabilities {
		if !c.Valid() {
			return fmt.Errorf("registering connector %s: unknown capability %q", info.Name, c)
		}
		if seen[c] {
			return fmt.Errorf("registering connector %s: capability %q listed twice", info.Name, c)
		}
		seen[c] = true
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[info.Name]; dup {
		return fmt.Errorf("registering connector %s: name already registered", info.Name)
	}
	info.Capabilities = slices.Clone(info.Capabilities)
	registry.m[info.Name] = info
	return nil
}

// MustRegister is Register for init(): it panics on error, because a connector that cannot
// register is a programming mistake.
func MustRegister(info Info) {
	if err := Register(info); err != nil {
		panic(err)
	}
}

// Lookup returns the registered connector called name.
func Lookup(name string) (Info, bool) {
	registry.RLock()
	defer registry.RUnlock()
	info, ok := registry.m[name]
	return info, ok
}

// Names returns the registered connector names, sorted.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DecodeConfig decodes rawYAML over info's defaults, rejecting unknown fields, and validates
// the result. Empty input keeps the defaults.
func DecodeConfig(info Info, rawYAML []byte) (Config, error) {
	cfg := info.NewConfig()
	if len(bytes.TrimSpace(rawYAML)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(rawYAML))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("decoding %s connector config: %w", info.Name, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid %s connector config: %w", info.Name, err)
	}
	return cfg, nil
}

// Open builds the registered connector name from its YAML configuration: decode (unknown
// fields rejected), validate, construct, and check that the capabilities it declares are
// exactly the role interfaces it implements. Open does not contact the system; call Check
// before serving.
func Open(name string, rawYAML []byte) (Connector, error) {
	info, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("opening connector %q: not registered (known: %v)", name, Names())
	}
	cfg, err := DecodeConfig(info, rawYAML)
	if err != nil {
		return nil, err
	}
	c, err := info.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("opening connector %s: %w", name, err)
	}
	if err := CheckCapabilities(info, c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// CheckCapabilities returns an error naming every capability that info declares but c does
// not implement, and every one c implements but info does not declare.
func CheckCapabilities(info Info, c Connector) error {
	impl := implemented(c)
	if scoped, ok := c.(Scoped); ok {
		for _, sc := range scoped.Capabilities() {
			if !slices.Contains(info.Capabilities, sc) {
				return fmt.Errorf("connector %s: capability %q is not one the type serves (%v)", info.Name, sc, info.Capabilities)
			}
		}
	}
	var missing, undeclared []Capability
	for _, d := range info.Capabilities {
		if !slices.Contains(impl, d) {
			missing = append(missing, d)
		}
	}
	for _, i := range impl {
		if !slices.Contains(info.Capabilities, i) {
			undeclared = append(undeclared, i)
		}
	}
	if len(missing) == 0 && len(undeclared) == 0 {
		return nil
	}
	return fmt.Errorf("connector %s: declared capabilities do not match its methods (declared but not implemented: %v; implemented but not declared: %v)",
		info.Name, missing, undeclared)
}
