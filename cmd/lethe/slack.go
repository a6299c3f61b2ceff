package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
)

func newSlackCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "slack", Short: "Act as Slack towards a running Lethe (local development)"}
	cmd.AddCommand(newSlackClickCmd())
	return cmd
}

func newSlackClickCmd() *cobra.Command {
	var d slackstandin.Decision
	var tenant, server string
	cmd := &cobra.Command{
		Use:   "click REQUEST_ID approve|deny",
		Short: "Click Approve or Deny on a request's approval message, signed as Slack signs it",
		Long: `Post to the running server's /slack/interactions the interaction Slack would send when a
user clicks Approve (or submits the Deny modal with --reason), signed with the tenant's signing
secret from the configuration (LETHE_CONFIG; lethe dev prints the file). The server answers as
it answers Slack: what was posted or updated shows on lethe dev's /dev/slack page.`,
		Example: "  lethe slack click 01J... approve\n  lethe slack click 01J... deny --reason 'We hold no data about you' --user UDEVAPPROVER",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			d.RequestID, d.Action = args[0], args[1]
			if d, err = app.SlackClick(cfg, tenant, server, d); err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			if err := slackstandin.Decide(ctx, d); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s as Slack user %s: posted to %s\n", d.Action, d.RequestID, d.User, d.Endpoint)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&d.Reason, "reason", "", "why the request is denied (sent to the subject)")
	f.StringVar(&d.User, "user", "", "Slack user ID clicking (default: the tenant's first approver listed)")
	f.StringVar(&tenant, "tenant", "", "tenant whose Slack app signs (default: the one with Slack settings)")
	f.StringVar(&server, "server", "", "base URL of the running server (default: http.public_url)")
	return cmd
}
