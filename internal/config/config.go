// Package config loads Lethe's configuration: one YAML file (LETHE_CONFIG) with environment
// overrides. It is loaded and validated once at start and passed down; every error names the
// setting (and its environment variable) so the user knows what to fix. Secrets come only from
// the environment or from files and are never part of an error or log line.
package config

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/deadline"
)

// EnvFile names the environment variable that points at the YAML file.
const EnvFile = "LETHE_CONFIG"

// Config is the whole configuration of a Lethe deployment.
type Config struct {
	HTTP       HTTP        `yaml:"http"`
	Temporal   Temporal    `yaml:"temporal"`
	Kafka      Kafka       `yaml:"kafka"`
	Database   Database    `yaml:"database"`
	Secrets    Secrets     `yaml:"secrets"`
	Exports    Exports     `yaml:"exports"`
	Mail       Mail        `yaml:"mail"`
	Tenants    []Tenant    `yaml:"tenants"`
	Connectors []Connector `yaml:"connectors"`
	Limits     Limits      `yaml:"limits"`
	Slack      SlackAPI    `yaml:"slack"`
	Webhooks   Webhooks    `yaml:"webhooks"`
}

// HTTP is the API, MyAccount and dashboard listener.
type HTTP struct {
	Addr string `yaml:"addr"`
	// PublicURL is how users reach Lethe; it is used in links sent by email.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies are the load balancers whose X-Forwarded-For Lethe believes; without
	// them the client address is the connection's.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// HealthAddr, when set, makes every long-running part (worker, bridge, connector runners,
	// serve too) answer /healthz, /readyz and /metrics there, for orchestrators' probes and
	// scrapers; serve also answers them on Addr.
	HealthAddr string `yaml:"health_addr"`
	// MetricsRefresh is how long /metrics serves the numbers it read from PostgreSQL and Kafka
	// before reading them again (0 reads them at every scrape).
	MetricsRefresh time.Duration `yaml:"metrics_refresh"`
}

// Temporal is the Temporal cluster Lethe's workflows run on.
type Temporal struct {
	HostPort  string `yaml:"host_port"`
	Namespace string `yaml:"namespace"`
	TaskQueue string `yaml:"task_queue"`
	TLS       TLS    `yaml:"tls"`
	// APIKey authenticates to Temporal Cloud (or any frontend that takes API keys); it needs
	// TLS, which it turns on.
	APIKey Secret `yaml:"api_key"`
}

// Kafka is the cluster that carries intake, connector commands and results, and events.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	// Partitions and ReplicationFactor apply to topics Lethe creates at start.
	Partitions        int    `yaml:"partitions"`
	ReplicationFactor int    `yaml:"replication_factor"`
	ClientID          string `yaml:"client_id"`
	// TopicPrefix is put before every topic name, for environments sharing one cluster.
	TopicPrefix string `yaml:"topic_prefix"`
	// Retention is how long each kind of topic keeps messages (Go durations such as 168h).
	Retention KafkaRetention `yaml:"retention"`
	TLS       TLS            `yaml:"tls"`
	SASL      SASL           `yaml:"sasl"`
}

// TLS is how Lethe connects to a service over TLS: the system's roots unless CAFile is set,
// and a client certificate (CertFile and KeyFile) where the service asks for one.
type TLS struct {
	Enabled  bool   `yaml:"enabled"`
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`

	config *tls.Config
}

// Config is the TLS configuration built at load, nil when TLS is off.
func (t TLS) Config() *tls.Config { return t.config }

// SASL authenticates Lethe to Kafka.
type SASL struct {
	// Mechanism is one of SASLMechanisms; empty means no SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
}

// SASLMechanisms are the SASL mechanisms Lethe speaks to Kafka.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// Build makes the SASL mechanism, nil when SASL is off. Load has checked the settings.
func (s SASL) Build() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: s.Password.Value()}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, s.Username, s.Password.Value())
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, s.Username, s.Password.Value())
	}
	return nil, fmt.Errorf("%q must be one of %s", s.Mechanism, strings.Join(SASLMechanisms, ", "))
}

// KafkaRetention is set on every topic Lethe creates or finds at start. Zero means the default:
// 168h (7 days) for commands, results, the dead-letter topic and intake; 720h for events.
type KafkaRetention struct {
	Commands time.Duration `yaml:"commands"`
	Results  time.Duration `yaml:"results"`
	DLQ      time.Duration `yaml:"dlq"`
	Intake   time.Duration `yaml:"intake"`
	Events   time.Duration `yaml:"events"`
}

// Database is Lethe's own PostgreSQL database (read model, audit trail, ledgers).
type Database struct {
	// URL must not carry a password; use DATABASE_URL, URLFile or PGPASSWORD for that.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// MaxConns bounds the connection pool.
	MaxConns int32 `yaml:"max_conns"`
}

// Exports is where large results (subjects' records, export packages) are stored.
type Exports struct {
	// Dir is a local directory; it must be shared by workers and connector runners.
	Dir string `yaml:"dir"`
	// ExpireAfterDays is how long a completed request's export (the ZIP and the connectors'
	// files) is kept before it is deleted (default 30).
	ExpireAfterDays int `yaml:"expire_after_days"`
}

// Mail is how Lethe emails subjects: Mailgun, in the US or EU region.
type Mail struct {
	Domain string `yaml:"domain"`
	Region string `yaml:"region"`
	From   string `yaml:"from"`
	// APIBase overrides the region's API URL (a Mailgun-compatible service).
	APIBase string `yaml:"api_base"`
	APIKey  Secret `yaml:"api_key"`
	// WebhookSigningKey verifies Mailgun's delivery webhooks at /webhooks/mailgun; without it
	// the route refuses every call.
	WebhookSigningKey Secret `yaml:"webhook_signing_key"`
	// BatchSettle is how long a breach notice batch whose send went unanswered (a crash, a
	// timeout) waits for Mailgun's events to show whether it was accepted before it is sent
	// again (default 5 minutes; see README, "Notifying the people affected").
	BatchSettle time.Duration `yaml:"batch_settle"`
	// NoticeRetention is how long after a notice run ends the addresses of the people it told,
	// and for whom no final delivery event came, are kept before they are cleared (default 7
	// days; see README, "Notifying the people affected").
	NoticeRetention time.Duration `yaml:"notice_retention"`
}

// Secrets names where Lethe's own keys come from.
type Secrets struct {
	// SigningKey signs export links and MyAccount sessions.
	SigningKey Secret `yaml:"signing_key"`
	// ConnectorKeys are the keys that seal each connector instance's commands, by connector
	// name: the first key of a list seals new commands, every key listed opens them, so a
	// rotation puts the new key first and keeps the old one until its commands are gone. A Go
	// connector without keys here uses one derived from SigningKey; a remote connector must
	// have its own, since its program has to hold it.
	ConnectorKeys map[string][]ConnectorKey `yaml:"connector_keys"`
}

// ConnectorKey is one AES-256 key: 32 bytes, base64 (openssl rand -base64 32), from the
// environment or a file like every secret.
type ConnectorKey struct {
	ID     string `yaml:"id"`
	Secret `yaml:",inline"`

	key envelope.Key
}

// Key is the parsed key ("" id before Load resolved it).
func (k ConnectorKey) Key() envelope.Key { return k.key }

// ConnectorKeyList returns the configured keys of one connector, current first.
func (c *Config) ConnectorKeyList(connector string) []envelope.Key {
	var keys []envelope.Key
	for _, k := range c.Secrets.ConnectorKeys[connector] {
		keys = append(keys, k.key)
	}
	return keys
}

// Secret is read from an environment variable or a file, never from the YAML itself.
type Secret struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`

	value string
}

// Value is the secret's resolved value ("" before Load resolved it).
func (s Secret) Value() string { return s.value }

// Tenant is one business using this Lethe deployment.
type Tenant struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Regime is the default legal regime of its requests: gdpr or ccpa.
	Regime string `yaml:"regime"`
	// Country is an ISO 3166-1 alpha-2 code; its public holidays move GDPR due dates.
	Country string `yaml:"country"`
	// TimeZone is the IANA zone in which dates of receipt are counted.
	TimeZone string  `yaml:"time_zone"`
	Tokens   []Token `yaml:"tokens"`
	// ContactEmail is the privacy contact shown to subjects; LogoURL and Color brand notices.
	ContactEmail string `yaml:"contact_email"`
	// DPOEmail receives the escalation of every overdue request (default: ContactEmail).
	DPOEmail string `yaml:"dpo_email"`
	// StaffEmail receives the reminders before a due date (default: the DPO's address).
	StaffEmail string `yaml:"staff_email"`
	// AssertionKey verifies identity assertions from the tenant's own app: HS256 JWTs whose
	// subject Lethe then treats as verified.
	AssertionKey Secret `yaml:"assertion_key"`
	LogoURL      string `yaml:"logo_url"`
	Color        string `yaml:"color"`
	Policy       Policy `yaml:"policy"`
	// Breach is what the breach notification rules need to know about the tenant.
	Breach BreachFacts `yaml:"breach"`
	// Slack, when set, posts the tenant's approval messages to Slack and takes decisions there.
	Slack *Slack `yaml:"slack"`
	// Retention, when set, runs the tenant's retention rules every day.
	Retention *Retention `yaml:"retention"`
	// Webhooks are its subscriptions to request and breach events (config.Webhook).
	Webhooks []Webhook `yaml:"webhooks,omitempty"`
	// SMS names the connector instance (type sms, serving the tenant) through which Lethe
	// texts the tenant's people itself: verification codes and breach notices to people known
	// only by a phone number. Empty: Lethe sends no texts of its own.
	SMS string `yaml:"sms,omitempty"`
}

// BreachFacts say which breach notification obligations can apply to a tenant
// (internal/breachclock).
type BreachFacts struct {
	// Establishment is where the tenant is established: an ISO 3166-1 country (DE) or 3166-2
	// subdivision (US-CA). Default: Country.
	Establishment string `yaml:"establishment"`
	Listed        bool   `yaml:"listed"`      // a listed company: SEC Form 8-K Item 1.05
	HIPAA         bool   `yaml:"hipaa"`       // a HIPAA covered entity or business associate
	NIS2          bool   `yaml:"nis2"`        // an essential or important entity under NIS2
	SmallAgent    bool   `yaml:"small_agent"` // a small processing agent under LGPD
	// Reminders replaces the rules table's default reminder schedule ({of: 72, at: [24, 48, 60,
	// 70]}: hours into a 72-hour clock, in proportion for clocks of other lengths).
	Reminders *breachclock.Reminders `yaml:"reminders"`
}

// BreachEstablishment is where the tenant is established for the breach rules.
func (t Tenant) BreachEstablishment() string { return cmp.Or(t.Breach.Establishment, t.Country) }

var jurisdiction = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)

// Policy is how a tenant handles requests.
type Policy struct {
	// ManualApproval lists the request types that need a staff decision; the others start at
	// once after identity verification. Default: erasure, rectification, restriction.
	ManualApproval []string `yaml:"manual_approval,omitempty"`
	// ClockStart is "receipt" (the default) or "verification".
	ClockStart string `yaml:"clock_start"`
	// BlockedErasure is "wait" (re-check daily until clear or the deadline nears; default) or
	// "close".
	BlockedErasure string `yaml:"blocked_erasure"`
	// ReminderDays are the days before the due date on which staff are reminded (default 7, 2).
	ReminderDays []int `yaml:"reminder_days,omitempty"`
	// IdentityTimeoutDays ends a request never verified (default 14).
	IdentityTimeoutDays int `yaml:"identity_timeout_days"`
}

// Token is an API bearer token bound to one role of one tenant.
type Token struct {
	Role   string `yaml:"role"`
	Secret `yaml:",inline"`
}

// Roles a token may carry.
var Roles = []string{"intake", "support", "dpo", "admin"}

// envOverrides is the one table of environment variables that override YAML settings; errors
// about a setting name its variable from here.
var envOverrides = []struct {
	env, path string
	apply     func(c *Config, v string) error
}{
	{"LETHE_HTTP_ADDR", "http.addr", func(c *Config, v string) error { c.HTTP.Addr = v; return nil }},
	{"LETHE_HEALTH_ADDR", "http.health_addr", func(c *Config, v string) error { c.HTTP.HealthAddr = v; return nil }},
	{"LETHE_METRICS_REFRESH", "http.metrics_refresh", duration(func(c *Config) *time.Duration { return &c.HTTP.MetricsRefresh })},
	{"LETHE_PUBLIC_URL", "http.public_url", func(c *Config, v string) error { c.HTTP.PublicURL = v; return nil }},
	{"LETHE_HTTP_TRUSTED_PROXIES", "http.trusted_proxies", func(c *Config, v string) error { c.HTTP.TrustedProxies = splitList(v); return nil }},
	{"LETHE_TEMPORAL_HOSTPORT", "temporal.host_port", func(c *Config, v string) error { c.Temporal.HostPort = v; return nil }},
	{"LETHE_TEMPORAL_NAMESPACE", "temporal.namespace", func(c *Config, v string) error { c.Temporal.Namespace = v; return nil }},
	{"LETHE_TEMPORAL_TASK_QUEUE", "temporal.task_queue", func(c *Config, v string) error { c.Temporal.TaskQueue = v; return nil }},
	{"LETHE_KAFKA_BROKERS", "kafka.brokers", func(c *Config, v string) error {
		c.Kafka.Brokers = splitList(v)
		return nil
	}},
	{"LETHE_KAFKA_PARTITIONS", "kafka.partitions", wholeNumber(func(c *Config) *int { return &c.Kafka.Partitions })},
	{"LETHE_DATABASE_MAX_CONNS", "database.max_conns", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		c.Database.MaxConns = int32(n)
		return nil
	}},
	{"LETHE_EXPORTS_DIR", "exports.dir", func(c *Config, v string) error { c.Exports.Dir = v; return nil }},
	{"LETHE_EXPORTS_EXPIRE_AFTER_DAYS", "exports.expire_after_days", wholeNumber(func(c *Config) *int { return &c.Exports.ExpireAfterDays })},
	{"LETHE_MAIL_DOMAIN", "mail.domain", func(c *Config, v string) error { c.Mail.Domain = v; return nil }},
	{"LETHE_MAIL_REGION", "mail.region", func(c *Config, v string) error { c.Mail.Region = v; return nil }},
	{"LETHE_MAIL_FROM", "mail.from", func(c *Config, v string) error { c.Mail.From = v; return nil }},
	{"LETHE_MAIL_API_BASE", "mail.api_base", func(c *Config, v string) error { c.Mail.APIBase = v; return nil }},
	{"LETHE_MAIL_BATCH_SETTLE", "mail.batch_settle", duration(func(c *Config) *time.Duration { return &c.Mail.BatchSettle })},
	{"LETHE_MAIL_NOTICE_RETENTION", "mail.notice_retention", duration(func(c *Config) *time.Duration { return &c.Mail.NoticeRetention })},
	{"LETHE_KAFKA_RETENTION_COMMANDS", "kafka.retention.commands", duration(func(c *Config) *time.Duration { return &c.Kafka.Retention.Commands })},
	{"LETHE_KAFKA_RETENTION_RESULTS", "kafka.retention.results", duration(func(c *Config) *time.Duration { return &c.Kafka.Retention.Results })},
	{"LETHE_KAFKA_RETENTION_DLQ", "kafka.retention.dlq", duration(func(c *Config) *time.Duration { return &c.Kafka.Retention.DLQ })},
	{"LETHE_KAFKA_RETENTION_INTAKE", "kafka.retention.intake", duration(func(c *Config) *time.Duration { return &c.Kafka.Retention.Intake })},
	{"LETHE_KAFKA_RETENTION_EVENTS", "kafka.retention.events", duration(func(c *Config) *time.Duration { return &c.Kafka.Retention.Events })},
	{"LETHE_TEMPORAL_TLS", "temporal.tls.enabled", boolean(func(c *Config) *bool { return &c.Temporal.TLS.Enabled })},
	{"LETHE_TEMPORAL_TLS_CA_FILE", "temporal.tls.ca_file", func(c *Config, v string) error { c.Temporal.TLS.CAFile = v; return nil }},
	{"LETHE_TEMPORAL_TLS_CERT_FILE", "temporal.tls.cert_file", func(c *Config, v string) error { c.Temporal.TLS.CertFile = v; return nil }},
	{"LETHE_TEMPORAL_TLS_KEY_FILE", "temporal.tls.key_file", func(c *Config, v string) error { c.Temporal.TLS.KeyFile = v; return nil }},
	{"LETHE_KAFKA_TLS", "kafka.tls.enabled", boolean(func(c *Config) *bool { return &c.Kafka.TLS.Enabled })},
	{"LETHE_KAFKA_TLS_CA_FILE", "kafka.tls.ca_file", func(c *Config, v string) error { c.Kafka.TLS.CAFile = v; return nil }},
	{"LETHE_KAFKA_TLS_CERT_FILE", "kafka.tls.cert_file", func(c *Config, v string) error { c.Kafka.TLS.CertFile = v; return nil }},
	{"LETHE_KAFKA_TLS_KEY_FILE", "kafka.tls.key_file", func(c *Config, v string) error { c.Kafka.TLS.KeyFile = v; return nil }},
	{"LETHE_KAFKA_SASL_MECHANISM", "kafka.sasl.mechanism", func(c *Config, v string) error { c.Kafka.SASL.Mechanism = v; return nil }},
	{"LETHE_KAFKA_SASL_USERNAME", "kafka.sasl.username", func(c *Config, v string) error { c.Kafka.SASL.Username = v; return nil }},
	{"LETHE_KAFKA_TOPIC_PREFIX", "kafka.topic_prefix", func(c *Config, v string) error { c.Kafka.TopicPrefix = v; return nil }},
	{"LETHE_SLACK_API_URL", "slack.api_url", func(c *Config, v string) error { c.Slack.APIURL = v; return nil }},
	{"LETHE_WEBHOOKS_ALLOW_PRIVATE", "webhooks.allow_private", boolean(func(c *Config) *bool { return &c.Webhooks.AllowPrivate })},
	{"LETHE_WEBHOOKS_MAX_ATTEMPTS", "webhooks.max_attempts", wholeNumber(func(c *Config) *int { return &c.Webhooks.MaxAttempts })},
	{"LETHE_WEBHOOKS_BACKOFF", "webhooks.backoff", duration(func(c *Config) *time.Duration { return &c.Webhooks.Backoff })},
	{"DATABASE_URL", "database.url", func(c *Config, v string) error { c.Database.URL = v; return nil }},
}

// duration is the override of a duration setting.
func duration(field func(c *Config) *time.Duration) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 168h", v)
		}
		*field(c) = d
		return nil
	}
}

// boolean is the override of an on/off setting.
func boolean(field func(c *Config) *bool) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*field(c) = b
		return nil
	}
}

// wholeNumber is the override of a whole-number setting.
func wholeNumber(field func(c *Config) *int) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*field(c) = n
		return nil
	}
}

// Setting returns the name of a setting with its environment override, for error messages.
func Setting(path string) string {
	for _, o := range envOverrides {
		if o.path == path {
			return path + " (" + o.env + ")"
		}
	}
	return path
}

// Defaults returns the configuration used when nothing is set: a single-machine deployment.
func Defaults() Config {
	return Config{
		HTTP: HTTP{Addr: "127.0.0.1:8080", MetricsRefresh: 15 * time.Second},
		Temporal: Temporal{HostPort: "127.0.0.1:7233", Namespace: "default", TaskQueue: "lethe",
			APIKey: Secret{Env: "LETHE_TEMPORAL_API_KEY"}},
		Kafka: Kafka{Partitions: 3, ReplicationFactor: 1, ClientID: "lethe",
			SASL: SASL{Password: Secret{Env: "LETHE_KAFKA_SASL_PASSWORD"}}},
		Database: Database{MaxConns: 10},
		Exports:  Exports{Dir: "exports", ExpireAfterDays: 30},
		Secrets:  Secrets{SigningKey: Secret{Env: "LETHE_SIGNING_KEY"}},
		Mail: Mail{Region: "us", BatchSettle: 5 * time.Minute, NoticeRetention: 7 * 24 * time.Hour, APIKey: Secret{Env: "LETHE_MAILGUN_API_KEY"},
			WebhookSigningKey: Secret{Env: "LETHE_MAILGUN_WEBHOOK_KEY"}},
		Limits:   DefaultLimits(),
		Webhooks: DefaultWebhooks(),
	}
}

// Load reads the file named by LETHE_CONFIG (if set), applies environment overrides and
// validates the result.
func Load() (Config, error) {
	return LoadFrom(os.Getenv(EnvFile), os.LookupEnv)
}

// LoadFrom is Load with an explicit file ("" for none) and environment lookup.
func LoadFrom(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := Defaults()
	if path != "" {
		if err := ReadFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	if err := Resolve(&cfg, lookup); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ReadFile decodes the YAML file over cfg.
func ReadFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: reading config file: %w", EnvFile, err)
	}
	if err := Parse(data, cfg); err != nil {
		return fmt.Errorf("%s %s: %w", EnvFile, path, err)
	}
	if u, err := url.Parse(cfg.Database.URL); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return fmt.Errorf("database.url: holds a password; put the URL in DATABASE_URL or database.url_file instead")
		}
	}
	return nil
}

// Resolve applies environment overrides, reads secrets and validates: the last step of loading,
// for callers that build part of the configuration themselves (lethe dev).
func Resolve(cfg *Config, lookup func(string) (string, bool)) error {
	for _, o := range envOverrides {
		if v, ok := lookup(o.env); ok && v != "" {
			if err := o.apply(cfg, v); err != nil {
				return fmt.Errorf("%s: %w", Setting(o.path), err)
			}
		}
	}
	if err := cfg.resolveSecrets(lookup); err != nil {
		return err
	}
	return cfg.Validate()
}

var yamlValue = regexp.MustCompile("`[^`]*`")

// Parse decodes YAML strictly over cfg: an unknown key is an error, so a typo never silently
// falls back to a default.
func Parse(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := oldConnectorForms(data); err != nil {
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		// yaml quotes the offending value, which may be a secret written where a source belongs.
		msg := yamlValue.ReplaceAllString(oneLine(err.Error()), "(value withheld)")
		if strings.Contains(msg, "config.Secret") {
			msg += "; a secret is never written in the YAML: write {env: VARIABLE} or {file: PATH}"
		}
		return fmt.Errorf("invalid YAML: %s", msg)
	}
	return nil
}

func (c *Config) resolveSecrets(lookup func(string) (string, bool)) error {
	// The signing key keys export links, MyAccount sessions, verification-code and subject
	// hashes: without it they would be keyed by nothing.
	v, err := resolve("secrets.signing_key", c.Secrets.SigningKey, lookup, true)
	if err != nil {
		return err
	}
	if len(v) < 32 {
		return fmt.Errorf("secrets.signing_key: must be at least 32 bytes (e.g. the output of openssl rand -hex 32)")
	}
	c.Secrets.SigningKey.value = v
	if v, err = resolve("mail.api_key", c.Mail.APIKey, lookup, false); err != nil {
		return err
	}
	c.Mail.APIKey.value = v
	if v, err = resolve("mail.webhook_signing_key", c.Mail.WebhookSigningKey, lookup, false); err != nil {
		return err
	}
	c.Mail.WebhookSigningKey.value = v
	if err := c.resolveLinks(lookup); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(c.Secrets.ConnectorKeys)) {
		for i := range c.Secrets.ConnectorKeys[name] {
			k := &c.Secrets.ConnectorKeys[name][i]
			setting := fmt.Sprintf("secrets.connector_keys.%s[%d]", name, i)
			v, err := resolve(setting, k.Secret, lookup, true)
			if err != nil {
				return err
			}
			if k.key, err = envelope.ParseKey(k.ID, v); err != nil {
				return fmt.Errorf("%s: %v", setting, err)
			}
		}
	}
	if c.Database.URLFile != "" && c.Database.URL == "" {
		b, err := os.ReadFile(c.Database.URLFile)
		if err != nil {
			return fmt.Errorf("database.url_file: %s", oneLine(err.Error()))
		}
		c.Database.URL = strings.TrimSpace(string(b))
	}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		v, err := resolve(fmt.Sprintf("tenants[%s].assertion_key", t.ID), t.AssertionKey, lookup, t.AssertionKey.Env != "" || t.AssertionKey.File != "")
		if err != nil {
			return err
		}
		if v != "" && len(v) < 32 {
			return fmt.Errorf("tenants[%s].assertion_key: must be at least 32 characters", t.ID)
		}
		t.AssertionKey.value = v
		for j := range t.Tokens {
			name := fmt.Sprintf("tenants[%s].tokens[%d]", t.ID, j)
			v, err := resolve(name, t.Tokens[j].Secret, lookup, true)
			if err != nil {
				return err
			}
			t.Tokens[j].value = v
		}
		if t.Slack != nil {
			if err := t.Slack.resolve(t.ID, lookup); err != nil {
				return err
			}
		}
		if err := t.resolveWebhooks(lookup); err != nil {
			return err
		}
	}
	return nil
}

// resolveLinks reads the secrets and files of the Temporal and Kafka connections and builds
// their TLS configurations, so an unreadable certificate stops the start, naming the setting.
func (c *Config) resolveLinks(lookup func(string) (string, bool)) error {
	v, err := resolve("temporal.api_key", c.Temporal.APIKey, lookup, false)
	if err != nil {
		return err
	}
	c.Temporal.APIKey.value = v
	if v != "" {
		c.Temporal.TLS.Enabled = true // an API key must never travel in clear
	}
	if err := c.Temporal.TLS.build("temporal.tls"); err != nil {
		return err
	}
	if err := c.Kafka.TLS.build("kafka.tls"); err != nil {
		return err
	}
	s := &c.Kafka.SASL
	if s.Mechanism == "" {
		return nil
	}
	if !slices.Contains(SASLMechanisms, s.Mechanism) {
		return fmt.Errorf("%s: %q must be one of %s", Setting("kafka.sasl.mechanism"), s.Mechanism, strings.Join(SASLMechanisms, ", "))
	}
	if s.Mechanism == "PLAIN" && !c.Kafka.TLS.Enabled {
		return fmt.Errorf("%s: PLAIN sends the password in clear; enable kafka.tls or use SCRAM-SHA-512", Setting("kafka.sasl.mechanism"))
	}
	if s.Username == "" {
		return fmt.Errorf("%s: must be set with kafka.sasl.mechanism %s", Setting("kafka.sasl.username"), s.Mechanism)
	}
	if s.Password.value, err = resolve("kafka.sasl.password", s.Password, lookup, true); err != nil {
		return err
	}
	if _, err := s.Build(); err != nil {
		return fmt.Errorf("%s: %s", Setting("kafka.sasl.mechanism"), oneLine(err.Error()))
	}
	return nil
}

// build reads the TLS files named at setting (e.g. "kafka.tls").
func (t *TLS) build(setting string) error {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" {
			return fmt.Errorf("%s: files or server_name are set but TLS is off; set %s true", Setting(setting+".enabled"), Setting(setting+".enabled"))
		}
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return fmt.Errorf("%s: %s", Setting(setting+".ca_file"), oneLine(err.Error()))
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: %s holds no PEM certificate", Setting(setting+".ca_file"), t.CAFile)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s: a client certificate needs both cert_file and key_file", setting)
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return fmt.Errorf("%s: loading the client certificate: %s", Setting(setting+".cert_file"), oneLine(err.Error()))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	t.config = cfg
	return nil
}

func resolve(name string, s Secret, lookup func(string) (string, bool), required bool) (string, error) {
	switch {
	case s.Env != "" && s.File != "":
		return "", fmt.Errorf("%s: set env or file, not both", name)
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("%s.file: %s", name, oneLine(err.Error()))
		}
		return strings.TrimSpace(string(b)), nil
	case s.Env != "":
		v, ok := lookup(s.Env)
		if (!ok || v == "") && required {
			return "", fmt.Errorf("%s: environment variable %s is not set", name, s.Env)
		}
		return v, nil
	case required:
		return "", fmt.Errorf("%s: no secret source: set env (an environment variable name) or file", name)
	}
	return "", nil
}

var (
	tenantID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	country  = regexp.MustCompile(`^[A-Z]{2}$`)
)

// Validate checks every setting and returns the first problem, naming the setting.
func (c *Config) Validate() error {
	if err := hostPort(c.HTTP.Addr); err != nil {
		return fmt.Errorf("%s: %v", Setting("http.addr"), err)
	}
	if c.HTTP.MetricsRefresh < 0 || c.HTTP.MetricsRefresh > 10*time.Minute {
		return fmt.Errorf("%s: %s must be between 0s and 10m (how long /metrics keeps the numbers it read from PostgreSQL and Kafka)", Setting("http.metrics_refresh"), c.HTTP.MetricsRefresh)
	}
	if c.HTTP.HealthAddr != "" {
		if err := hostPort(c.HTTP.HealthAddr); err != nil {
			return fmt.Errorf("%s: %v", Setting("http.health_addr"), err)
		}
	}
	if c.HTTP.PublicURL != "" {
		if u, err := url.Parse(c.HTTP.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: %q is not an http(s) URL", Setting("http.public_url"), c.HTTP.PublicURL)
		}
	}
	if _, err := ParseProxies(c.HTTP.TrustedProxies); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := hostPort(c.Temporal.HostPort); err != nil {
		return fmt.Errorf("%s: %v", Setting("temporal.host_port"), err)
	}
	if c.Temporal.Namespace == "" {
		return fmt.Errorf("%s: must not be empty", Setting("temporal.namespace"))
	}
	if c.Temporal.TaskQueue == "" {
		return fmt.Errorf("%s: must not be empty", Setting("temporal.task_queue"))
	}
	if len(c.Kafka.Brokers) == 0 {
		return fmt.Errorf("%s: no brokers set", Setting("kafka.brokers"))
	}
	for _, b := range c.Kafka.Brokers {
		if err := hostPort(b); err != nil {
			return fmt.Errorf("%s: %v", Setting("kafka.brokers"), err)
		}
	}
	if c.Kafka.Partitions < 1 {
		return fmt.Errorf("%s: must be at least 1", Setting("kafka.partitions"))
	}
	if c.Kafka.ReplicationFactor < 1 {
		return fmt.Errorf("kafka.replication_factor: must be at least 1")
	}
	r := c.Kafka.Retention
	for i, d := range []time.Duration{r.Commands, r.Results, r.DLQ, r.Intake, r.Events} {
		// Under a minute, a consumer restart would lose messages: surely a unit mistyped.
		if d != 0 && d < time.Minute {
			name := []string{"commands", "results", "dlq", "intake", "events"}[i]
			return fmt.Errorf("%s: %s is shorter than a minute; write a duration such as 168h", Setting("kafka.retention."+name), d)
		}
	}
	if c.Mail.BatchSettle <= 0 {
		return fmt.Errorf("%s: %s must be positive (how long an unanswered notice batch waits for Mailgun's events)", Setting("mail.batch_settle"), c.Mail.BatchSettle)
	}
	if c.Mail.NoticeRetention <= 0 {
		return fmt.Errorf("%s: %s must be positive (how long a notice's addresses are kept after its run)", Setting("mail.notice_retention"), c.Mail.NoticeRetention)
	}
	if c.Exports.Dir == "" {
		return fmt.Errorf("%s: must not be empty", Setting("exports.dir"))
	}
	if c.Exports.ExpireAfterDays < 1 {
		return fmt.Errorf("%s: %d must be at least 1 (days a completed request's export is kept)", Setting("exports.expire_after_days"), c.Exports.ExpireAfterDays)
	}
	if err := c.validateDatabase(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, t := range c.Tenants {
		if !tenantID.MatchString(t.ID) {
			return fmt.Errorf("tenants[%d].id: %q must be lower-case letters, digits, - or _", i, t.ID)
		}
		if seen[t.ID] {
			return fmt.Errorf("tenants[%d].id: %q appears twice", i, t.ID)
		}
		seen[t.ID] = true
		if t.Regime != "gdpr" && t.Regime != "ccpa" {
			return fmt.Errorf("tenants[%s].regime: %q must be gdpr or ccpa", t.ID, t.Regime)
		}
		if t.Country != "" && !country.MatchString(t.Country) {
			return fmt.Errorf("tenants[%s].country: %q must be an ISO 3166-1 alpha-2 code such as DE", t.ID, t.Country)
		}
		// Without a calendar every request of the tenant would fail at its due date.
		if c, err := deadline.ParseCountry(t.Country); err != nil {
			return fmt.Errorf("tenants[%s].country: %s has no public-holiday calendar; use one of %s, or leave it out to move due dates past weekends only",
				t.ID, t.Country, strings.Join(deadline.Countries(), ", "))
		} else if c != t.Country {
			return fmt.Errorf("tenants[%s].country: write %s as %s", t.ID, t.Country, c)
		}
		if t.TimeZone != "" {
			if _, err := time.LoadLocation(t.TimeZone); err != nil {
				return fmt.Errorf("tenants[%s].time_zone: %q is not an IANA time zone", t.ID, t.TimeZone)
			}
		}
		if err := t.Policy.validate(t.ID); err != nil {
			return err
		}
		for j, tok := range t.Tokens {
			if !slices.Contains(Roles, tok.Role) {
				return fmt.Errorf("tenants[%s].tokens[%d].role: %q must be one of %s", t.ID, j, tok.Role, strings.Join(Roles, ", "))
			}
			if tok.value != "" && len(tok.value) < 16 {
				return fmt.Errorf("tenants[%s].tokens[%d]: token is shorter than 16 characters", t.ID, j)
			}
		}
		if err := t.validateAddresses(); err != nil {
			return err
		}
		if e := t.Breach.Establishment; e != "" && !jurisdiction.MatchString(e) {
			return fmt.Errorf("tenants[%s].breach.establishment: %q is not an ISO 3166 code such as DE or US-CA", t.ID, e)
		}
		if rm := t.Breach.Reminders; rm != nil {
			if err := rm.Validate(); err != nil {
				return fmt.Errorf("tenants[%s].breach.reminders: %w", t.ID, err)
			}
		}
		if t.Slack != nil {
			if err := t.Slack.validate(t.ID); err != nil {
				return err
			}
		}
		if err := t.validateWebhooks(c.Webhooks.AllowPrivate); err != nil {
			return err
		}
	}
	if err := c.Webhooks.validate(); err != nil {
		return err
	}
	if err := c.validateConnectors(); err != nil {
		return err
	}
	for _, t := range c.Tenants {
		if err := c.validateRetention(t); err != nil {
			return err
		}
		if err := c.validateSMS(t); err != nil {
			return err
		}
	}
	if err := c.Slack.validate(); err != nil {
		return err
	}
	return c.validateConnectorKeys()
}

// validateSMS checks that the tenant's sms instance exists, is an sms connector and serves it.
func (c *Config) validateSMS(t Tenant) error {
	if t.SMS == "" {
		return nil
	}
	in, ok := c.Connector(t.SMS)
	switch {
	case !ok:
		return fmt.Errorf("tenants[%s].sms: no connector instance named %q (configured: %s)", t.ID, t.SMS, strings.Join(c.CommandConnectors(), ", "))
	case in.Type != "sms":
		return fmt.Errorf("tenants[%s].sms: instance %q is of type %s, not sms", t.ID, t.SMS, in.Type)
	case !in.Serves(t.ID):
		return fmt.Errorf("tenants[%s].sms: instance %q does not serve tenant %s (its tenants list)", t.ID, t.SMS, t.ID)
	}
	return nil
}

// ExportExpiry is how long a closed request's export is kept: exports.expire_after_days.
func (c *Config) ExportExpiry() time.Duration {
	return time.Duration(c.Exports.ExpireAfterDays) * 24 * time.Hour
}

// DPOAddress is where overdue escalations go: dpo_email, else contact_email.
func (t Tenant) DPOAddress() string { return cmp.Or(t.DPOEmail, t.ContactEmail) }

// StaffAddress is where deadline reminders go: staff_email, else the DPO's address.
func (t Tenant) StaffAddress() string { return cmp.Or(t.StaffEmail, t.DPOAddress()) }

// validateAddresses checks the tenant's addresses; the escalation of an overdue request must
// reach a person, so one of dpo_email and contact_email is required.
func (t Tenant) validateAddresses() error {
	for _, a := range []struct{ name, value string }{
		{"contact_email", t.ContactEmail}, {"dpo_email", t.DPOEmail}, {"staff_email", t.StaffEmail},
	} {
		if a.value == "" {
			continue
		}
		if addr, err := mail.ParseAddress(a.value); err != nil || addr.Address != a.value {
			return fmt.Errorf("tenants[%s].%s: %q is not an email address such as dpo@example.com", t.ID, a.name, a.value)
		}
	}
	if t.DPOAddress() == "" {
		return fmt.Errorf("tenants[%s].dpo_email: not set: overdue requests are escalated to this address (contact_email is used when it is left out)", t.ID)
	}
	return nil
}

func (c *Config) validateConnectorKeys() error {
	known := c.CommandConnectors()
	for _, name := range slices.Sorted(maps.Keys(c.Secrets.ConnectorKeys)) {
		keys := c.Secrets.ConnectorKeys[name]
		if !slices.Contains(known, name) {
			return fmt.Errorf("secrets.connector_keys.%s: no connector or remote connector has this name", name)
		}
		if len(keys) == 0 {
			return fmt.Errorf("secrets.connector_keys.%s: list at least one key", name)
		}
		ids := map[string]bool{}
		for i, k := range keys {
			if ids[k.ID] {
				return fmt.Errorf("secrets.connector_keys.%s[%d].id: %q appears twice", name, i, k.ID)
			}
			ids[k.ID] = true
		}
	}
	for _, in := range c.Connectors {
		if in.Remote() && len(c.Secrets.ConnectorKeys[in.Name]) == 0 {
			return fmt.Errorf("secrets.connector_keys.%s: remote connector %s needs a key of its own to read its commands (32 bytes, base64: openssl rand -base64 32)", in.Name, in.Name)
		}
	}
	return nil
}

// RequestTypes are the kinds of data-subject request.
var RequestTypes = []string{"access", "portability", "rectification", "erasure", "restriction", "objection"}

// DefaultManualApproval are the request types staff approve unless the tenant says otherwise.
var DefaultManualApproval = []string{"erasure", "rectification", "restriction"}

func (p *Policy) validate(tenant string) error {
	for _, t := range p.ManualApproval {
		if !slices.Contains(RequestTypes, t) {
			return fmt.Errorf("tenants[%s].policy.manual_approval: %q must be one of %s", tenant, t, strings.Join(RequestTypes, ", "))
		}
	}
	if p.ClockStart != "" && p.ClockStart != "receipt" && p.ClockStart != "verification" {
		return fmt.Errorf("tenants[%s].policy.clock_start: %q must be receipt or verification", tenant, p.ClockStart)
	}
	if p.BlockedErasure != "" && p.BlockedErasure != "wait" && p.BlockedErasure != "close" {
		return fmt.Errorf("tenants[%s].policy.blocked_erasure: %q must be wait or close", tenant, p.BlockedErasure)
	}
	for _, d := range p.ReminderDays {
		if d < 1 || d > 60 {
			return fmt.Errorf("tenants[%s].policy.reminder_days: %d must be between 1 and 60", tenant, d)
		}
	}
	if p.IdentityTimeoutDays < 0 {
		return fmt.Errorf("tenants[%s].policy.identity_timeout_days: must not be negative", tenant)
	}
	return nil
}

// NeedsApproval reports whether requests of type t wait for a staff decision.
func (p Policy) NeedsApproval(t string) bool {
	if p.ManualApproval == nil {
		return slices.Contains(DefaultManualApproval, t)
	}
	return slices.Contains(p.ManualApproval, t)
}

func (c *Config) validateDatabase() error {
	name := Setting("database.url")
	if c.Database.URL == "" {
		return fmt.Errorf("%s: not set", name)
	}
	// The URL may hold a password, so it is never echoed back.
	u, err := url.Parse(c.Database.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("%s: not a postgres:// URL", name)
	}
	if c.Database.MaxConns < 1 {
		return fmt.Errorf("database.max_conns: must be at least 1")
	}
	return nil
}

// Tenant returns the tenant with the given id.
func (c *Config) Tenant(id string) (Tenant, bool) {
	for _, t := range c.Tenants {
		if t.ID == id {
			return t, true
		}
	}
	return Tenant{}, false
}

// MyAccountPath is where a tenant's MyAccount pages live: /myaccount when the deployment has one
// tenant, /myaccount/<tenant> when it has several.
func (c *Config) MyAccountPath(tenant string) string {
	if len(c.Tenants) <= 1 {
		return "/myaccount"
	}
	return "/myaccount/" + tenant
}

func hostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
