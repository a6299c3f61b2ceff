// Package teststack builds a whole in-process Lethe for one test: its own databases, Kafka
// topic prefix and Temporal task queue on the real services of internal/testenv, the demo
// salon's database loaded behind the database connector, and Mailgun's stand-in behind the
// dev mailbox, as `lethe dev` sends mail. Only tests use it.
package teststack

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailgun/mailgun-go/v4"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/mailchimpstandin"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
	"github.com/lethe-privacy/lethe/internal/standin"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
	"github.com/lethe-privacy/lethe/internal/webhooks"

	_ "github.com/lethe-privacy/lethe/connectors/builtin" // every connector lethe has, as the binary
)

// Salon is the YAML of the demo salon tenant, approving nothing by hand.
const Salon = `
  - id: salon
    name: Salon Example
    regime: gdpr
    country: DE
    time_zone: Europe/Berlin
    contact_email: privacy@salon.example
    policy: {manual_approval: []}`

// SlackSalon is the salon approving erasures and restrictions by hand from Slack (Options.Slack):
// UAPPROVER and the members of user group SPRIVACY decide erasures, UOTHER only restrictions;
// messages go to channel CAPPROVALS.
var SlackSalon = strings.Replace(Salon, "policy: {manual_approval: []}", `policy: {manual_approval: [erasure, restriction]}
    slack:
      bot_token: {env: SALON_SLACK_BOT_TOKEN}
      signing_secret: {env: SALON_SLACK_SIGNING_SECRET}
      approval_channel: CAPPROVALS
      approvers:
        - {types: [erasure], users: [UAPPROVER], group: SPRIVACY}
        - {types: [restriction], users: [UOTHER]}`, 1)

// The Twilio account of Options.SMS, and the salon's sender on it.
const (
	TwilioAccount = demo.TwilioAccount
	TwilioToken   = "salon-twilio-auth-token"
	TwilioSender  = demo.TwilioSender
)

// WebhookSecret signs the deliveries of the webhook subscription (Options.Webhooks).
const WebhookSecret = "teststack-webhook-secret-0123456789"

// MailchimpKey is the API key of the Mailchimp stand-in (Options.Mailchimp).
const MailchimpKey = "0123456789abcdef0123456789abcdef-us6"

// SlackSecret is the signing secret of SlackSalon's Slack app.
const SlackSecret = "salon-slack-signing-secret-0123"

// Options say what a suite needs from its stack; the zero value (with a Name) is the salon
// alone, two partitions per topic and public URL http://lethe.test.
type Options struct {
	// Name prefixes the topics, the task queue and the keys, so a failing suite is findable.
	Name string
	// Tenants is the YAML list under tenants: (default Salon).
	Tenants string
	// Env is set in addition to the stack's own variables, e.g. tokens the tenants refer to.
	Env map[string]string
	// SigningKey defaults to Name + "-signing-key-0123456789abcdef".
	SigningKey string
	// Partitions per topic (default 2); 1 lets a test read one partition's offsets.
	Partitions int
	// Listen reserves a local address before configuration is loaded: it becomes the public
	// URL that links in emails use, and Serve serves on it.
	Listen bool
	// LogHandler wraps the warn-level text handler, e.g. to count log records.
	LogHandler func(slog.Handler) slog.Handler
	// MailboxSize is how many messages the mailbox keeps (default 100).
	MailboxSize int
	// Connector is the database connector's YAML (default deploy/demo's).
	Connector []byte
	// Slack starts a Slack stand-in (Stack.Slack) that slack.api_url points at, with the
	// secrets SlackSalon refers to and SPRIVACY's one member UGROUPMEMBER.
	Slack bool
	// Customers sizes each demo database (default deploy/demo's few hundred).
	Customers int
	// SMS starts a Twilio stand-in (Stack.Twilio) holding the first demo database's booking
	// reminders, and binds the salon to an instance of the sms connector on it, named sms,
	// sending from TwilioSender.
	SMS bool
	// Mailchimp starts a Mailchimp stand-in (Stack.Mailchimp) holding the first demo
	// database's marketing list, served by the connector instance mailchimp for every tenant.
	Mailchimp bool
	// Webhooks subscribes the last tenant of Tenants (the salon by default) to every request and
	// breach event, delivered to a local receiver (Stack.Inbox) signed with WebhookSecret.
	Webhooks bool
	// Databases are the instances of the database connector, each in front of a database of
	// its own holding the demo salon's data (default: one, named database, for every tenant).
	Databases []Database
	// Instances is YAML appended under connectors: after the database instances, e.g. a remote
	// instance the test serves itself.
	Instances string
	// Config is top-level YAML appended to the configuration file, e.g. secrets: for them.
	Config string
}

// Database is one instance of the database connector and the tenants bound to it.
type Database struct {
	Name    string
	Tenants []string
}

// demoURLEnv is the variable holding the DSN of an instance's demo database; the first
// instance uses the demo configuration's own, LETHE_DEMO_DATABASE_URL.
func demoURLEnv(i int, name string) string {
	if i == 0 {
		return "LETHE_DEMO_DATABASE_URL"
	}
	return "LETHE_DEMO_DATABASE_URL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Stack is one test's Lethe. Everything it starts stops when the test ends.
type Stack struct {
	T       testing.TB
	Cfg     config.Config
	CfgFile string
	Env     map[string]string // what the stack set, for lethe processes started by the test
	Prefix  string            // Kafka topic and group prefix
	URL     string            // public URL; served by Serve when Options.Listen
	Deps    *app.Stack        // the Lethe under test, built as every process builds it
	Demo    *pgxpool.Pool     // the demo salon's database (the first instance's)
	// Demos are the demo databases by database connector instance.
	Demos map[string]*pgxpool.Pool
	// Mailgun is Mailgun's mock, which records single notices; Standin is in front of it and
	// takes the batches of breach notices (see internal/standin).
	Mailgun mailgun.MockServer
	Standin *standin.Server
	Mailbox *mail.Mailbox
	// Slack is the Slack stand-in, with Options.Slack.
	Slack *slackstandin.Server
	// Twilio is the Twilio stand-in, with Options.SMS.
	Twilio *twiliostandin.Server
	// Mailchimp is the Mailchimp stand-in, with Options.Mailchimp.
	Mailchimp *mailchimpstandin.Server
	// Inbox receives the webhook subscription's deliveries, with Options.Webhooks.
	Inbox *webhooks.Inbox
	Log   *slog.Logger

	listener net.Listener
}

// New builds the stack: configuration, connections, migrations and topics. No part runs yet.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	ctx := context.Background()
	if o.Tenants == "" {
		o.Tenants = Salon
	}
	if o.SigningKey == "" {
		o.SigningKey = o.Name + "-signing-key-0123456789abcdef"
	}
	if o.Partitions == 0 {
		o.Partitions = 2
	}
	if o.MailboxSize == 0 {
		o.MailboxSize = 100
	}
	s := &Stack{T: t, Standin: standin.New(), Prefix: o.Name + "-" + testenv.Suffix() + ".", URL: "http://lethe.test"}
	s.Mailgun = s.Standin.Mock()
	t.Cleanup(s.Standin.Stop)

	if o.Databases == nil {
		o.Databases = []Database{{Name: "database", Tenants: []string{"*"}}}
	}
	if o.Connector == nil {
		o.Connector = demo.ConnectorConfig
	}
	var err error
	s.Env = map[string]string{}
	s.Demos = map[string]*pgxpool.Pool{}
	var connectors strings.Builder
	for i, db := range o.Databases {
		url := testenv.PostgresURL(t)
		pool, err := pgxpool.New(ctx, url)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		if o.Customers > 0 {
			_, err = demo.Generate(ctx, pool, time.Now(), demo.GenerateOptions{Customers: o.Customers, BookingsPerCustomer: 1})
		} else {
			_, err = demo.Load(ctx, pool, time.Now())
		}
		require.NoError(t, err)
		require.NoError(t, demo.TrackChanges(ctx, pool))
		s.Demos[db.Name] = pool
		if i == 0 {
			s.Demo = pool
		}
		env := demoURLEnv(i, db.Name)
		s.Env[env] = url
		yml := strings.Replace(string(o.Connector), "dsn_env: "+demoURLEnv(0, ""), "dsn_env: "+env, 1)
		require.Contains(t, yml, "dsn_env: "+env, "teststack: the connector's YAML must read its DSN from %s", demoURLEnv(0, ""))
		tenants, err := json.Marshal(db.Tenants)
		require.NoError(t, err)
		connectors.WriteString("\n  - name: " + db.Name + "\n    type: database\n    tenants: " + string(tenants) +
			"\n    config:" + strings.ReplaceAll("\n"+yml, "\n", "\n      "))
	}

	if o.SMS {
		s.Twilio = twiliostandin.New(TwilioAccount, TwilioToken)
		t.Cleanup(s.Twilio.Stop)
		_, err := app.SeedTwilio(ctx, s.Twilio, s.Demo, time.Now())
		require.NoError(t, err)
		s.Env[demo.TwilioTokenEnv] = TwilioToken
		connectors.WriteString("\n  - name: sms\n    type: sms\n    tenants: [salon]\n    config:" +
			strings.ReplaceAll("\n"+string(demo.SMSConnectorConfig("salon", s.Twilio.URL())), "\n", "\n      "))
	}
	if o.Mailchimp {
		s.Mailchimp = mailchimpstandin.New(MailchimpKey)
		t.Cleanup(s.Mailchimp.Close)
		s.Mailchimp.AddList(demo.MailchimpAudience, "Salon news")
		_, err := app.SeedMailchimp(ctx, s.Mailchimp, s.Demo)
		require.NoError(t, err)
		s.Env[demo.MailchimpKeyEnv] = MailchimpKey
		connectors.WriteString("\n  - name: mailchimp\n    type: mailchimp\n    tenants: [\"*\"]\n    config:" +
			strings.ReplaceAll("\n"+strings.TrimSpace(string(demo.MailchimpConnectorConfig(s.Mailchimp.URL()))), "\n", "\n      "))
	}

	webhookConfig := ""
	if o.Webhooks {
		s.Inbox = webhooks.NewInbox([]byte(WebhookSecret), 1000)
		srv := httptest.NewServer(s.Inbox)
		t.Cleanup(srv.Close)
		s.Env["TEST_WEBHOOK_SECRET"] = WebhookSecret
		o.Tenants += "\n    webhooks: [{name: inbox, url: \"" + srv.URL + "/hook\", events: [\"request.*\", \"breach.*\"], secret: {env: TEST_WEBHOOK_SECRET}}]"
		webhookConfig = "\nwebhooks: {allow_private: true, backoff: 200ms, poll: 100ms}"
	}

	if o.Listen {
		s.listener, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		s.URL = "http://" + s.listener.Addr().String()
	}

	dir := t.TempDir()
	s.CfgFile = filepath.Join(dir, "lethe.yaml")
	require.NoError(t, os.WriteFile(s.CfgFile, []byte(`
tenants:`+o.Tenants+`
mail: {domain: mg.salon.example, from: privacy@mg.salon.example}
connectors:`+connectors.String()+o.Instances+webhookConfig+"\n"+o.Config), 0o600))
	for k, v := range map[string]string{
		"DATABASE_URL":              testenv.PostgresURL(t),
		"LETHE_KAFKA_BROKERS":       strings.Join(testenv.KafkaBrokers(t), ","),
		"LETHE_KAFKA_TOPIC_PREFIX":  s.Prefix,
		"LETHE_KAFKA_PARTITIONS":    strconv.Itoa(o.Partitions),
		"LETHE_TEMPORAL_HOSTPORT":   testenv.TemporalHostPort(t),
		"LETHE_TEMPORAL_TASK_QUEUE": o.Name + "-" + testenv.Suffix(),
		"LETHE_EXPORTS_DIR":         filepath.Join(dir, "exports"),
		"LETHE_PUBLIC_URL":          s.URL,
		"LETHE_SIGNING_KEY":         o.SigningKey,
		"LETHE_MAIL_API_BASE":       s.Standin.URL(),
		"LETHE_MAILGUN_API_KEY":     "key-" + o.Name,
		"LETHE_DEMO_HASH_KEY":       o.Name + "-tenant-hash-key-0123456789abcdef",
		"LETHE_CONFIG":              s.CfgFile,
	} {
		s.Env[k] = v
	}
	if o.Slack {
		s.Slack = slackstandin.New()
		t.Cleanup(s.Slack.Stop)
		t.Cleanup(func() { // runs first: every test on a Slack stack checks all it posted
			if err := s.Slack.CheckSent(); err != nil {
				t.Error(err)
			}
		})
		s.Slack.SetGroup("SPRIVACY", "UGROUPMEMBER")
		s.Env["SALON_SLACK_BOT_TOKEN"], s.Env["SALON_SLACK_SIGNING_SECRET"], s.Env["LETHE_SLACK_API_URL"] = "xoxb-salon-test", SlackSecret, s.Slack.URL()
	}
	for k, v := range o.Env {
		s.Env[k] = v
	}
	for k, v := range s.Env {
		t.Setenv(k, v)
	}
	s.Cfg, err = config.Load()
	require.NoError(t, err)
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	if o.LogHandler != nil {
		h = o.LogHandler(h)
	}
	s.Log = slog.New(h)
	need := app.All
	need.Mailbox = o.MailboxSize
	s.Deps, err = app.New(ctx, s.Cfg, s.Log, need)
	require.NoError(t, err)
	t.Cleanup(s.Deps.Close)
	s.Mailbox = s.Deps.Mailbox
	require.NoError(t, s.Deps.Prepare(ctx, func(string, ...any) {}))
	return s
}

// Run starts one part (worker, bridge, connector, intake) in this process; the returned
// function stops it and waits until it has. Parts still running stop when the test ends.
func (s *Stack) Run(name string, part func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- part(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		// A part stopped while still starting reports the cancellation; that is no failure.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			s.T.Errorf("%s: %v", name, err)
		}
	}
	s.T.Cleanup(stop)
	return stop
}

// RunAll starts every part lethe dev runs but HTTP (app.Stack.Parts): the worker, the
// bridge's consumers and a runner for each database connector instance.
func (s *Stack) RunAll() {
	for _, p := range s.Deps.Parts() {
		s.Run(p.Name, p.Run)
	}
}

// Handler is the HTTP surface lethe serve and lethe dev mount, over this stack.
func (s *Stack) Handler() http.Handler {
	s.T.Helper()
	h, err := s.Deps.Handler()
	require.NoError(s.T, err)
	return h
}

// Serve serves h at URL until the test ends; the stack must have been built with Listen.
func (s *Stack) Serve(h http.Handler) {
	s.T.Helper()
	require.NotNil(s.T, s.listener, "teststack: Serve needs Options.Listen")
	hs := httptest.NewUnstartedServer(h)
	hs.Listener.Close()
	hs.Listener = s.listener
	hs.Start()
	s.T.Cleanup(hs.Close)
}

// Submit files a verified request for the salon through the API channel and returns its id.
func (s *Stack) Submit(typ string, subject connectors.Subject) string {
	s.T.Helper()
	id, err := s.Deps.Requests().Submit(context.Background(), requests.Submission{
		TenantID: "salon", Type: typ, Subject: subject, IdentityVerified: true, Channel: "api",
	})
	require.NoError(s.T, err)
	return id
}

// Await waits for the request's workflow to end and returns its final state.
func (s *Stack) Await(id string) domain.RequestState {
	s.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var st domain.RequestState
	err := s.Deps.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &st)
	require.NoError(s.T, err, "request %s", id)
	return st
}

// Unzip reads every file of an export package.
func Unzip(t testing.TB, raw []byte) map[string][]byte {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("the export is not a ZIP (%d bytes): %v", len(raw), err)
	}
	out := map[string][]byte{}
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

// Rows parses one exported table (<connector>/<table>.json, a JSON array of objects).
func Rows(t testing.TB, files map[string][]byte, name string) []map[string]any {
	t.Helper()
	raw, ok := files[name]
	if !ok {
		t.Fatalf("the export has no %s", name)
	}
	var rows []map[string]any
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatalf("%s is not a JSON array of records: %v", name, err)
	}
	return rows
}
