package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailgun/mailgun-go/v4"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/localstack"
	"github.com/lethe-privacy/lethe/internal/mailchimpstandin"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
	"github.com/lethe-privacy/lethe/internal/webhooks"
	"github.com/lethe-privacy/lethe/workflows"
)

// DevOptions are the flags of lethe dev.
type DevOptions struct {
	// Dir keeps the state (databases, Temporal history, generated secrets) between runs.
	Dir, TemporalBin, HTTPAddr                    string
	PostgresPort, TemporalPort, UIPort, KafkaPort int
	// Log is the stack's logger; ServiceLog receives the local services' own output (nil
	// discards it).
	Log        *slog.Logger
	ServiceLog io.Writer
	// Step reports progress, one line per step.
	Step func(format string, args ...any)
}

// Dev is the whole of Lethe on this machine (lethe dev): the local services, Mailgun's
// stand-in for mail, and one Stack over them with the demo salon's database loaded.
type Dev struct {
	*Stack
	Services *localstack.Dev
	Mailgun  mailgun.MockServer
	// Slack is the Slack stand-in the demo tenant's approval messages go to (/dev/slack).
	Slack *slackstandin.Server
	// Mailchimp is the Mailchimp stand-in holding the demo salon's marketing list, which the
	// demo tenant's mailchimp connector instance serves; MailchimpMembers counts that list.
	Mailchimp        *mailchimpstandin.Server
	MailchimpMembers int
	// Webhooks receives the demo tenant's webhook subscription at /dev/webhooks/inbox and
	// lists what arrived at /dev/webhooks.
	Webhooks *webhooks.Inbox
	// Twilio is the Twilio stand-in holding the demo salon's booking reminders (TwilioTexts of
	// them), which the demo tenant's sms connector instance serves.
	Twilio      *twiliostandin.Server
	TwilioTexts int
	// ConfigFile is the configuration written for operator commands against this stack.
	ConfigFile string
	AdminToken string
	// Demo summarises the demo salon's data.
	Demo string

	listener net.Listener
	step     func(format string, args ...any)
}

// StartDev starts the local services, writes the configuration for operator commands, builds
// the stack, applies migrations, creates the topics and loads the demo salon. Nothing runs yet
// (see Run); on an error whatever started is stopped again.
func StartDev(ctx context.Context, o DevOptions) (_ *Dev, err error) {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	if _, err := os.Stat(o.TemporalBin); err != nil {
		return nil, fmt.Errorf("Temporal CLI not found at %s: run ./deploy/dev.sh, which builds it, or pass --temporal-bin", o.TemporalBin)
	}
	secrets, err := loadDevSecrets(filepath.Join(o.Dir, "dev-secrets.json"))
	if err != nil {
		return nil, err
	}
	d := &Dev{AdminToken: secrets.AdminToken, step: o.Step}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.Services, err = localstack.StartDev(ctx, localstack.DevOptions{
		Dir: o.Dir, TemporalBin: o.TemporalBin, Brokers: os.Getenv("LETHE_KAFKA_BROKERS"),
		PostgresPort: o.PostgresPort, TemporalPort: o.TemporalPort, UIPort: o.UIPort, KafkaPort: o.KafkaPort,
		Databases: []string{"lethe", "lethe_demo"}, Log: o.ServiceLog, Step: o.Step,
	}); err != nil {
		return nil, err
	}
	// Mail goes to Mailgun's own stand-in, in this process.
	d.Mailgun = mailgun.NewMockServer()
	// Slack too: the demo tenant's approval messages go to slack-go's stand-in, in this process.
	d.Slack = slackstandin.New()
	// And the salon's marketing list lives in a Mailchimp stand-in.
	d.Mailchimp = mailchimpstandin.New(DevMailchimpKey)
	d.Mailchimp.AddList(demo.MailchimpAudience, "Demo Salon news")
	// The demo tenant's webhook subscription delivers to a receiver on the dev server itself.
	d.Webhooks = webhooks.NewInbox([]byte(DevWebhookSecret(secrets.SigningKey)), 500)
	// And its booking reminders in a Twilio stand-in, which posts replies to the salon's
	// number (STOP, START) to Lethe's webhook, signed.
	d.Twilio = twiliostandin.New(demo.TwilioAccount, DevTwilioToken)
	d.Twilio.SetWebhook(demo.TwilioSender, "http://"+o.HTTPAddr+"/webhooks/twilio/sms")
	env := devEnv(o, d.Services, d.Mailgun.URL(), secrets)
	env["LETHE_SLACK_API_URL"] = d.Slack.URL()
	cfg, err := devConfig(env, devStandins{Mailchimp: d.Mailchimp.URL(), Twilio: d.Twilio.URL()})
	if err != nil {
		return nil, err
	}
	if d.ConfigFile, err = writeDevConfig(o.Dir, cfg, secrets); err != nil {
		return nil, err
	}
	if d.listener, err = Listen(cfg.HTTP.Addr); err != nil {
		return nil, err
	}
	need := All
	need.Mailbox = 500
	if d.Stack, err = New(ctx, cfg, o.Log, need); err != nil {
		return nil, err
	}
	return d, d.prepare(ctx)
}

// devEnv is the environment the local stack's configuration resolves: the services'
// addresses, the mail stand-in and the dev secrets. The demo connector reads its database URL
// and hash key from the process environment, so those two are set there too unless set already.
func devEnv(o DevOptions, svc *localstack.Dev, mailgunURL string, secrets devSecrets) map[string]string {
	env := map[string]string{
		"LETHE_MAIL_API_BASE":       mailgunURL,
		"LETHE_MAILGUN_API_KEY":     "dev",
		"LETHE_MAIL_DOMAIN":         "mg.lethe.localhost",
		"LETHE_MAIL_FROM":           "privacy@mg.lethe.localhost",
		"LETHE_EXPORTS_DIR":         filepath.Join(o.Dir, "exports"),
		"LETHE_DEMO_DATABASE_URL":   svc.Postgres.URL("lethe_demo"),
		"LETHE_DEMO_HASH_KEY":       secrets.SigningKey,
		"DATABASE_URL":              svc.Postgres.URL("lethe"),
		"LETHE_TEMPORAL_HOSTPORT":   svc.Temporal.HostPort(),
		"LETHE_KAFKA_BROKERS":       svc.Brokers,
		"LETHE_HTTP_ADDR":           o.HTTPAddr,
		"LETHE_PUBLIC_URL":          "http://" + o.HTTPAddr,
		"LETHE_SIGNING_KEY":         secrets.SigningKey,
		"LETHE_DEMO_ADMIN_TOKEN":    secrets.AdminToken,
		"LETHE_DEMO_SLACK_BOT":      "xoxb-dev-demo",
		"LETHE_DEMO_SLACK_SECRET":   DevSlackSecret(secrets.SigningKey),
		"LETHE_DEMO_WEBHOOK_SECRET": DevWebhookSecret(secrets.SigningKey),
		demo.MailchimpKeyEnv:        DevMailchimpKey,
		demo.TwilioTokenEnv:         DevTwilioToken,
	}
	for _, k := range []string{"LETHE_DEMO_DATABASE_URL", "LETHE_DEMO_HASH_KEY", demo.MailchimpKeyEnv, demo.TwilioTokenEnv} {
		if os.Getenv(k) == "" {
			os.Setenv(k, env[k])
		}
	}
	return env
}

// prepare applies migrations, creates the topics, loads the demo salon's database and seeds
// the stand-ins from it.
func (d *Dev) prepare(ctx context.Context) error {
	if err := d.Prepare(ctx, d.step); err != nil {
		return err
	}
	d.step("loading the demo salon's database")
	pool, err := pgxpool.New(ctx, d.Services.Postgres.URL("lethe_demo"))
	if err != nil {
		return fmt.Errorf("connecting to the demo database: %w", err)
	}
	defer pool.Close()
	if d.Demo, err = loadDemo(ctx, pool); err != nil {
		return err
	}
	d.step("seeding the Mailchimp stand-in with the demo salon's marketing list")
	if d.MailchimpMembers, err = SeedMailchimp(ctx, d.Mailchimp, pool); err != nil {
		return err
	}
	d.step("seeding the Twilio stand-in with the demo salon's booking reminders")
	d.TwilioTexts, err = SeedTwilio(ctx, d.Twilio, pool, time.Now())
	return err
}

// DevMailchimpKey is the Mailchimp API key of lethe dev's stand-in (datacenter us1).
const DevMailchimpKey = "00000000000000000000000000de5a10-us1"

// DevMailchimpMember asks the Mailchimp API the mailchimp connector instance of cfg points at
// (lethe dev's stand-in) for the demo audience's member at email, with the key the instance
// reads or else lethe dev's, and returns the answer's status line: "200 OK" while the member
// is there, "404 Not Found (Resource Not Found)" once deleted permanently.
func DevMailchimpMember(ctx context.Context, cfg config.Config, email string) (string, error) {
	in, ok := cfg.Connector("mailchimp")
	if !ok {
		return "", errors.New("no mailchimp connector instance is configured")
	}
	var mc struct {
		BaseURL   string `yaml:"base_url"`
		APIKeyEnv string `yaml:"api_key_env"`
	}
	if err := in.Config.Decode(&mc); err != nil || mc.BaseURL == "" {
		return "", fmt.Errorf("the mailchimp instance has no base_url of a stand-in (%v)", err)
	}
	key := cmp.Or(os.Getenv(mc.APIKeyEnv), DevMailchimpKey)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mc.BaseURL+"/lists/"+demo.MailchimpAudience+"/members/"+mailchimpstandin.Hash(email), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth("lethe-demo", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking the Mailchimp stand-in: %w", err)
	}
	defer resp.Body.Close()
	var problem struct{ Title string }
	_ = json.NewDecoder(resp.Body).Decode(&problem)
	if resp.StatusCode == http.StatusOK {
		return resp.Status, nil
	}
	return fmt.Sprintf("%s (%s)", resp.Status, problem.Title), nil
}

// SeedMailchimp puts the demo salon's marketing list (the customers who opted in to email)
// into the stand-in's audience demo.MailchimpAudience, with merge fields, the email marketing
// permission, a tag and a campaign's activity, and returns how many it put.
func SeedMailchimp(ctx context.Context, mc *mailchimpstandin.Server, db *pgxpool.Pool) (int, error) {
	list, err := demo.MarketingList(ctx, db)
	if err != nil {
		return 0, err
	}
	for _, c := range list {
		opted := c.OptedInAt.UTC().Format(time.RFC3339)
		mc.Put(demo.MailchimpAudience, mailchimpstandin.Member{
			EmailAddress: c.Email, Status: "subscribed", Language: "en", Source: "Salon booking form",
			TimestampSignup: opted, TimestampOpt: opted,
			MergeFields:          map[string]any{"FNAME": c.FirstName, "LNAME": c.LastName, "PHONE": c.Phone},
			MarketingPermissions: []mailchimpstandin.MarketingPermission{{ID: "email", Text: "Email", Enabled: true}},
			Tags:                 []mailchimpstandin.Tag{{Name: "customer"}},
		})
		mc.AddActivity(demo.MailchimpAudience, c.Email,
			mailchimpstandin.Activity{Type: "sent", CreatedAt: opted, CampaignID: "c0ffee0001", CampaignTitle: "Winter offers"},
			mailchimpstandin.Activity{Type: "open", CreatedAt: opted, CampaignID: "c0ffee0001", CampaignTitle: "Winter offers"})
	}
	return len(list), nil
}

// Run serves HTTP and runs every part until ctx ends or one fails. Once the worker has run a
// self-check workflow it calls ready, so what is printed then is true.
func (d *Dev) Run(ctx context.Context, ready func()) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	stack, err := d.Handler()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", stack)
	mux.Handle("GET /dev/slack", d.Slack.Page())
	mux.Handle("POST "+DevWebhookInbox, d.Webhooks)
	mux.Handle("GET /dev/webhooks", d.Webhooks.Page())
	var h http.Handler = mux
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return RunParts(gctx, d.Parts()...) })
	g.Go(func() error { return Serve(gctx, d.listener, h) })
	d.step("checking the worker with a self-check workflow")
	if err := selfCheck(gctx, d.Temporal, d.Cfg.Temporal.TaskQueue); err != nil {
		stop()
		_ = g.Wait()
		return err
	}
	ready()
	err = g.Wait()
	d.step("stopping")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// URL is where the HTTP surface answers.
func (d *Dev) URL() string { return "http://" + d.listener.Addr().String() }

// Database is the Lethe database's URL, fit to print.
func (d *Dev) Database() string { return redactURL(d.Services.Postgres.URL("lethe")) }

// Close stops everything, the last started first.
func (d *Dev) Close() {
	if d.Stack != nil {
		d.Stack.Close()
	}
	if d.listener != nil {
		d.listener.Close()
	}
	if d.Mailgun != nil {
		d.Mailgun.Stop()
	}
	if d.Slack != nil {
		d.Slack.Stop()
	}
	if d.Mailchimp != nil {
		d.Mailchimp.Close()
	}
	if d.Twilio != nil {
		d.Twilio.Stop()
	}
	if d.Services != nil {
		_ = d.Services.Stop()
	}
}

// DevWebhookInbox is where lethe dev receives the demo tenant's webhook subscription.
const DevWebhookInbox = "/dev/webhooks/inbox"

// DevWebhookSecret is the secret of the demo tenant's webhook subscription in lethe dev.
func DevWebhookSecret(signingKey string) string {
	sum := sha256.Sum256([]byte("lethe dev webhook:" + signingKey))
	return hex.EncodeToString(sum[:16])
}

// DevSlackApprover is the Slack user allowed to decide the demo tenant's requests in lethe dev.
const DevSlackApprover = "UDEVAPPROVER"

// DevSlackSecret is the demo tenant's Slack signing secret in lethe dev, derived from the dev
// signing key so that dev-secrets.json files written before Slack still serve.
func DevSlackSecret(signingKey string) string {
	sum := sha256.Sum256([]byte("lethe dev slack:" + signingKey))
	return hex.EncodeToString(sum[:16])
}

// devSecrets are generated on the first run and kept under --dir, so the printed token stays
// valid across restarts.
type devSecrets struct {
	AdminToken string `json:"admin_token"`
	SigningKey string `json:"signing_key"`
}

// devStandins are the addresses of the vendor stand-ins lethe dev runs.
type devStandins struct {
	Mailchimp string // the Marketing API base
	Twilio    string // the Twilio REST API base
}

// devConfig is the configuration of the local stack: the user's LETHE_CONFIG (if any), the
// local services' addresses, and the demo tenant unless the file defines one.
func devConfig(env map[string]string, standins devStandins) (config.Config, error) {
	cfg := config.Defaults()
	if path := os.Getenv(config.EnvFile); path != "" {
		if err := config.ReadFile(path, &cfg); err != nil {
			return config.Config{}, err
		}
	}
	if _, ok := cfg.Tenant("demo"); !ok {
		cfg.Tenants = append(cfg.Tenants, config.Tenant{
			ID: "demo", Name: "Demo Salon", Regime: "gdpr", Country: "DE", TimeZone: "Europe/Berlin",
			ContactEmail: "privacy@demo-salon.example",
			// Deadline reminders and escalations land in the dev mailbox under these addresses.
			DPOEmail: "dpo@demo-salon.example", StaffEmail: "front-desk@demo-salon.example",
			Tokens: []config.Token{{Role: "admin", Secret: config.Secret{Env: "LETHE_DEMO_ADMIN_TOKEN"}}},
			// Approval messages go to the Slack stand-in (/dev/slack); lethe slack click
			// decides as DevSlackApprover.
			Slack: &config.Slack{
				BotToken: config.Secret{Env: "LETHE_DEMO_SLACK_BOT"}, SigningSecret: config.Secret{Env: "LETHE_DEMO_SLACK_SECRET"},
				ApprovalChannel: "CDEVAPPROVALS", Approvers: []config.SlackApprovers{{Users: []string{DevSlackApprover}}},
			},
			// Request and breach events go to the receiver at /dev/webhooks, on this machine.
			Webhooks: []config.Webhook{{Name: "dev-inbox", URL: env["LETHE_PUBLIC_URL"] + DevWebhookInbox,
				Events: []string{"request.*", "breach.*"}, Secret: config.Secret{Env: "LETHE_DEMO_WEBHOOK_SECRET"}}},
		})
		cfg.Webhooks.AllowPrivate = true
	}
	// The demo salon's database is served by an instance of the database connector, named
	// database, for the demo tenant, unless the file configures an instance of that name.
	if _, ok := cfg.Connector("database"); !ok {
		var n yaml.Node
		if err := yaml.Unmarshal(demo.ConnectorConfig, &n); err != nil {
			return config.Config{}, fmt.Errorf("reading the demo connector configuration: %w", err)
		}
		cfg.Connectors = append(cfg.Connectors, config.Connector{Name: "database", Type: "database", Tenants: []string{"demo"}, Config: *n.Content[0]})
	}
	// The salon's marketing list is the instance mailchimp, in the Mailchimp stand-in.
	if _, ok := cfg.Connector("mailchimp"); !ok {
		var n yaml.Node
		if err := yaml.Unmarshal(demo.MailchimpConnectorConfig(standins.Mailchimp), &n); err != nil {
			return config.Config{}, fmt.Errorf("reading the demo mailchimp configuration: %w", err)
		}
		cfg.Connectors = append(cfg.Connectors, config.Connector{Name: "mailchimp", Type: "mailchimp", Tenants: []string{"demo"}, Config: *n.Content[0]})
	}
	// Its texts are the instance sms, in the Twilio stand-in.
	if _, ok := cfg.Connector("sms"); !ok {
		var n yaml.Node
		if err := yaml.Unmarshal(demo.SMSConnectorConfig("demo", standins.Twilio), &n); err != nil {
			return config.Config{}, fmt.Errorf("reading the demo sms configuration: %w", err)
		}
		cfg.Connectors = append(cfg.Connectors, config.Connector{Name: "sms", Type: "sms", Tenants: []string{"demo"}, Config: *n.Content[0]})
	}
	// The demo salon texts its own verification codes through it, so a request with only a
	// phone number can be verified: the code is in the stand-in's messages to that number.
	if in, ok := cfg.Connector("sms"); ok && in.Type == "sms" && in.Serves("demo") {
		for i := range cfg.Tenants {
			if cfg.Tenants[i].ID == "demo" && cfg.Tenants[i].SMS == "" {
				cfg.Tenants[i].SMS = in.Name
			}
		}
	}
	// A remote connector's program needs its key: in development it is derived from the dev
	// signing key, and writeDevConfig leaves it in a file for that program.
	for _, in := range cfg.Connectors {
		if !in.Remote() || len(cfg.Secrets.ConnectorKeys[in.Name]) > 0 {
			continue
		}
		secret, err := crypto.DeriveConnectorSecret(env["LETHE_SIGNING_KEY"], in.Name)
		if err != nil {
			return config.Config{}, err
		}
		name := "LETHE_DEV_CONNECTOR_KEY_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(in.Name))
		env[name] = base64.StdEncoding.EncodeToString(secret)
		if cfg.Secrets.ConnectorKeys == nil {
			cfg.Secrets.ConnectorKeys = map[string][]config.ConnectorKey{}
		}
		cfg.Secrets.ConnectorKeys[in.Name] = []config.ConnectorKey{{ID: crypto.DerivedKeyID, Secret: config.Secret{Env: name}}}
	}
	// The local services win over the caller's environment, except an external Kafka.
	err := config.Resolve(&cfg, func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	return cfg, err
}

// writeDevConfig writes the running stack's configuration, with secrets as files beside it,
// so `lethe requests` and other operator commands reach the same stack.
func writeDevConfig(dir string, cfg config.Config, s devSecrets) (string, error) {
	sdir := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return "", err
	}
	secret := func(name, value string) (config.Secret, error) {
		p, err := filepath.Abs(filepath.Join(sdir, name))
		if err != nil {
			return config.Secret{}, err
		}
		return config.Secret{File: p}, os.WriteFile(p, []byte(value), 0o600)
	}
	var err error
	if cfg.Secrets.SigningKey, err = secret("signing-key", s.SigningKey); err != nil {
		return "", err
	}
	if cfg.Mail.APIKey, err = secret("mailgun-api-key", cfg.Mail.APIKey.Value()); err != nil {
		return "", err
	}
	// The tenants and their tokens are shared with the running configuration: copy them
	// before pointing the tokens at files, or the running server would lose their values.
	cfg.Tenants = slices.Clone(cfg.Tenants)
	for i := range cfg.Tenants {
		cfg.Tenants[i].Tokens = slices.Clone(cfg.Tenants[i].Tokens)
		for j := range cfg.Tenants[i].Tokens {
			name := fmt.Sprintf("%s-%s-token", cfg.Tenants[i].ID, cfg.Tenants[i].Tokens[j].Role)
			if cfg.Tenants[i].Tokens[j].Secret, err = secret(name, cfg.Tenants[i].Tokens[j].Value()); err != nil {
				return "", err
			}
		}
		if sl := cfg.Tenants[i].Slack; sl != nil {
			c := *sl
			if c.BotToken, err = secret(cfg.Tenants[i].ID+"-slack-bot-token", sl.BotToken.Value()); err != nil {
				return "", err
			}
			if c.SigningSecret, err = secret(cfg.Tenants[i].ID+"-slack-signing-secret", sl.SigningSecret.Value()); err != nil {
				return "", err
			}
			cfg.Tenants[i].Slack = &c
		}
		cfg.Tenants[i].Webhooks = slices.Clone(cfg.Tenants[i].Webhooks)
		for j, w := range cfg.Tenants[i].Webhooks {
			if cfg.Tenants[i].Webhooks[j].Secret, err = secret(cfg.Tenants[i].ID+"-webhook-"+w.Name, w.Secret.Value()); err != nil {
				return "", err
			}
		}
	}
	// Connector keys as files too; a remote connector's program reads its key from there.
	keys := map[string][]config.ConnectorKey{}
	for name, list := range cfg.Secrets.ConnectorKeys {
		for _, k := range list {
			enc := base64.StdEncoding.EncodeToString(k.Key().Secret())
			if k.Secret, err = secret("connector-"+name+"-"+k.ID, enc); err != nil {
				return "", err
			}
			keys[name] = append(keys[name], k)
		}
	}
	cfg.Secrets.ConnectorKeys = keys
	if cfg.Exports.Dir, err = filepath.Abs(cfg.Exports.Dir); err != nil {
		return "", err
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path, _ := filepath.Abs(filepath.Join(dir, "dev.yaml"))
	header := "# Written by `lethe dev` for operator commands against the local stack; rewritten at every start.\n"
	return path, os.WriteFile(path, append([]byte(header), b...), 0o600)
}

func loadDevSecrets(path string) (devSecrets, error) {
	var s devSecrets
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("%s is damaged (%v): delete it to generate new dev secrets", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	s = devSecrets{AdminToken: "dev_" + randomHex(20), SigningKey: randomHex(32)}
	b, _ = json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return s, fmt.Errorf("writing %s: %w", path, err)
	}
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func loadDemo(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	s, err := demo.Load(ctx, pool, time.Now())
	if err != nil {
		return "", fmt.Errorf("loading the demo dataset: %w", err)
	}
	return fmt.Sprintf("%d customers, %d bookings (%d to come), %d invoices (%d unpaid)",
		s.Customers, s.Bookings, s.FutureBookings, s.Invoices, s.UnpaidInvoices), nil
}

func selfCheck(ctx context.Context, c client.Client, taskQueue string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "lethe-self-check-" + strconv.FormatInt(time.Now().UnixNano(), 36), TaskQueue: taskQueue,
	}, workflows.SelfCheckWorkflow, workflows.SelfCheckInput{RequestedBy: "lethe dev"})
	if err != nil {
		return fmt.Errorf("starting the self-check workflow: %w", err)
	}
	var res workflows.SelfCheckResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("self-check workflow: %w", err)
	}
	return nil
}

// redactURL hides any password before a URL is printed.
func redactURL(s string) string {
	u, err := pgxpool.ParseConfig(s)
	if err != nil {
		return "postgres://…"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", u.ConnConfig.User, u.ConnConfig.Host, u.ConnConfig.Port, u.ConnConfig.Database)
}
