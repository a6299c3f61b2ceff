package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/app"
)

type devOptions struct {
	app.DevOptions
	verbose bool
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack on this machine and print its URLs",
		Long: `Start everything Lethe needs on this machine, as child processes of this command:
  PostgreSQL   a local cluster from the installed binaries, data under --dir
  Temporal     the pinned Temporal CLI dev server (./bin/temporal) with its Web UI
  Kafka        an in-process broker, unless LETHE_KAFKA_BROKERS names a real cluster
then apply migrations, create the topics, load the demo salon's database, start the worker and
the HTTP server, and print the URLs and the demo tenant's admin token. Ctrl-C stops it all.

State (databases, Temporal history, generated secrets) persists under --dir between runs;
delete that directory to start afresh.`,
		Example: "  ./deploy/dev.sh          # builds ./bin/temporal if needed, then runs lethe dev\n  lethe dev --http 127.0.0.1:9090",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", ".lethe", "directory for local state")
	f.StringVar(&o.TemporalBin, "temporal-bin", filepath.Join("bin", "temporal"), "path of the Temporal CLI")
	f.StringVar(&o.HTTPAddr, "http", "127.0.0.1:8080", "address of the API, MyAccount and the dev mailbox")
	f.IntVar(&o.PostgresPort, "postgres-port", 54329, "port of the local PostgreSQL")
	f.IntVar(&o.TemporalPort, "temporal-port", 7233, "port of the Temporal frontend")
	f.IntVar(&o.UIPort, "temporal-ui-port", 8233, "port of the Temporal Web UI")
	f.IntVar(&o.KafkaPort, "kafka-port", 9092, "port of the in-process Kafka broker")
	f.BoolVar(&o.verbose, "verbose", false, "show the services' own logs")
	return cmd
}

func runDev(ctx context.Context, out io.Writer, o devOptions) error {
	o.Step = func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.verbose {
		o.Log, o.ServiceLog = newLogger("text"), os.Stderr
	}
	d, err := app.StartDev(ctx, o.DevOptions)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx, func() { printDevBanner(out, d, o.Dir) })
}

// printDevBanner tells where everything of the running stack is and how to try it.
func printDevBanner(out io.Writer, d *app.Dev, dir string) {
	fmt.Fprintf(out, `
Lethe is running. Ctrl-C stops everything.

  API            %[1]s/v1
  MyAccount      %[1]s/myaccount
  Readiness      %[1]s/readyz
  Temporal UI    %[2]s
  Kafka          %[3]s
  Dev mailbox    %[1]s/dev/mailbox  (mail goes to a Mailgun stand-in at %[7]s)
  Dev Slack      %[1]s/dev/slack  (approval messages go to a Slack stand-in at %[10]s)
  Mailchimp      stand-in at %[12]s  (the demo salon's marketing list: %[13]d members of audience %[14]s, key %[15]s)
  Webhooks       %[1]s/dev/webhooks  (the demo tenant's subscription to request and breach events, received at %[1]s%[16]s)
  Twilio         stand-in at %[17]s  (the demo salon's booking reminders: %[18]d texts from %[19]s, account %[20]s, token %[21]s)
  Texted codes   curl -u %[20]s:%[21]s '%[17]s/2010-04-01/Accounts/%[20]s/Messages.json?To=%[22]s'
                 (the stand-in's messages to that number: a request with only a phone gets its code by text)
  PostgreSQL     %[4]s  (demo data: %[5]s)
  Demo tenant    demo (admin token: %[6]s)

Try the API:
  curl -H 'Authorization: Bearer %[6]s' -H 'Content-Type: application/json' \
       -d '{"type":"access","subject":{"email":"hana.health@example.com"}}' %[1]s/v1/requests
Verify a request by text (MyAccount offers "Text me a code instead" too):
  curl -H 'Authorization: Bearer %[6]s' -H 'Content-Type: application/json' \
       -d '{"type":"access","subject":{"phone":"%[23]s"}}' %[1]s/v1/requests
  then POST {"code":"..."} from the texted code to %[1]s/v1/requests/REQUEST_ID/verify
Watch a whole flow (access, erasure, blocked erasure), in another terminal:
  ./bin/lethe demo%[9]s

Operator commands use the same stack through its configuration file:
  export LETHE_CONFIG=%[8]s
  lethe requests submit --type access --email nora.clearwater@example.com --verified
  lethe requests list
  lethe slack click REQUEST_ID approve      # or: deny --reason '...'; as Slack user %[11]s
`, d.URL(), d.Services.Temporal.UIURL(), d.Services.Kafka, d.Database(), d.Demo, d.AdminToken, d.Mailgun.URL(), d.ConfigFile, demoDirFlag(dir), d.Slack.URL(), app.DevSlackApprover,
		d.Mailchimp.URL(), d.MailchimpMembers, demo.MailchimpAudience, app.DevMailchimpKey, app.DevWebhookInbox,
		d.Twilio.URL(), d.TwilioTexts, demo.TwilioSender, demo.TwilioAccount, app.DevTwilioToken,
		url.QueryEscape(demo.ClearCustomerPhone), demo.ClearCustomerPhone)
}

// demoDirFlag is the --dir that `lethe demo` needs to find this stack.
func demoDirFlag(dir string) string {
	if dir == ".lethe" {
		return ""
	}
	return " --dir " + dir
}
