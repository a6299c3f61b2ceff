package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/deadline"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/workflows"
)

// requestsFlags are shared by every `lethe requests` subcommand.
type requestsFlags struct {
	tenant string
	json   bool
	actor  string
}

func newRequestsCmd() *cobra.Command {
	var f requestsFlags
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "Submit, list, show and decide data-subject requests",
		Long: `Operate on data-subject requests directly against Temporal and PostgreSQL: submit one
(e.g. a request that arrived by post), list them by status and due date, show one with its
timeline, record staff decisions (approve, deny, extend, verify, retry, cancel), and reconcile
requests whose workflow closed in Temporal. Decisions go to the request's workflow, which
checks them: a decision that does not apply now (approving a request still waiting for
identity, extending twice) is refused with the reason.` + configHelp,
	}
	cmd.PersistentFlags().StringVar(&f.tenant, "tenant", "", "tenant id (default: the only tenant configured)")
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print JSON")
	cmd.PersistentFlags().StringVar(&f.actor, "actor", "", "who decides, for the audit trail (default: your user name)")
	cmd.AddCommand(newRequestsSubmitCmd(&f), newRequestsListCmd(&f), newRequestsShowCmd(&f))
	for _, d := range []struct {
		use, update, short string
		reason             bool
	}{
		{"approve ID", workflows.UpdateApprove, "Approve a request waiting for approval", false},
		{"deny ID --reason TEXT", workflows.UpdateDeny, "Deny a request; the reason is sent to the subject", true},
		{"extend ID --reason TEXT", workflows.UpdateExtend, "Extend the deadline (GDPR: two months; CCPA: 45 days); the subject is told why", true},
		{"retry ID", workflows.UpdateRetry, "Retry the connectors that failed", false},
		{"cancel ID --reason TEXT", workflows.UpdateCancel, "Cancel a request before its work starts", true},
	} {
		cmd.AddCommand(newDecisionCmd(&f, d.use, d.update, d.short, d.reason))
	}
	cmd.AddCommand(newRequestsVerifyCmd(&f), newRequestsReconcileCmd(&f))
	return cmd
}

func newRequestsReconcileCmd(f *requestsFlags) *cobra.Command {
	return serviceCmd(&cobra.Command{
		Use:   "reconcile",
		Short: "Record requests whose workflow closed in Temporal (failed, terminated, timed out) as failed",
		Long: `Find every request, of every tenant, whose status is still live while its workflow is closed
in Temporal, and record it as failed with the reason, in the read model, the audit trail and
lethe.events. Every lethe worker does this at start and every few minutes; run it by hand after
terminating workflows.`,
		Args: cobra.NoArgs,
	}, app.Need{Store: true, Bus: true, Temporal: true}, func(ctx context.Context, d *app.Stack, _ []string) error {
		closed, err := d.Reconcile(ctx)
		if err != nil {
			return err
		}
		return printOut(os.Stdout, f.json, map[string]any{"closed": closed}, func(w io.Writer) {
			for _, c := range closed {
				fmt.Fprintf(w, "%s  %s  %s\n", c.RequestID, c.CloseStatus, c.Reason)
			}
			fmt.Fprintln(w, plural(len(closed), "request", "requests"), "recorded as failed")
		})
	})
}

// withRequests connects to PostgreSQL and Temporal and runs fn with the request service.
func withRequests(f *requestsFlags, fn func(ctx context.Context, s *requests.Service, tenant string) error) error {
	return withTenant(f, func(ctx context.Context, d *app.Stack, tenant string) error { return fn(ctx, d.Requests(), tenant) })
}

// withTenant connects to PostgreSQL and Temporal and runs fn for the tenant --tenant chooses.
func withTenant(f *requestsFlags, fn func(ctx context.Context, d *app.Stack, tenant string) error) error {
	return withStack(f, app.Need{Store: true, Temporal: true}, fn)
}

// withStack builds what need asks for and runs fn for the tenant --tenant chooses.
func withStack(f *requestsFlags, need app.Need, fn func(ctx context.Context, d *app.Stack, tenant string) error) error {
	ctx, stop := signalContext()
	defer stop()
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	tenant, err := chooseTenant(cfg, f.tenant)
	if err != nil {
		return err
	}
	d, err := app.New(ctx, cfg, newLogger("text"), need)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(ctx, d, tenant)
}

// chooseTenant is --tenant, checked against the configuration, or the only tenant there is.
func chooseTenant(cfg config.Config, tenant string) (string, error) {
	if tenant == "" {
		if len(cfg.Tenants) != 1 {
			return "", fmt.Errorf("--tenant is required: %d tenants are configured", len(cfg.Tenants))
		}
		return cfg.Tenants[0].ID, nil
	}
	if _, ok := cfg.Tenant(tenant); !ok {
		ids := make([]string, len(cfg.Tenants))
		for i, t := range cfg.Tenants {
			ids[i] = t.ID
		}
		return "", fmt.Errorf("--tenant %s: no such tenant; configured: %s", tenant, listOrNone(ids))
	}
	return tenant, nil
}

func (f *requestsFlags) who() string {
	if f.actor != "" {
		return f.actor
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

func newRequestsSubmitCmd(f *requestsFlags) *cobra.Command {
	var sub requests.Submission
	var received string
	var changes []string
	cmd := &cobra.Command{
		Use:   "submit --type TYPE --email ADDRESS",
		Short: "Submit a request on a subject's behalf (e.g. one that arrived by post)",
		Example: `  lethe requests submit --type access --email ada@example.com --received 2026-03-02 --channel post
  lethe requests submit --type rectification --email ada@example.com --change last_name=Lovelace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if received != "" {
				t, err := deadline.ParseDate(received)
				if err != nil {
					return fmt.Errorf("--received: %w", err)
				}
				sub.ReceivedAt = t
			}
			for _, c := range changes {
				k, v, ok := strings.Cut(c, "=")
				if !ok || k == "" {
					return fmt.Errorf("--change %q: want field=value", c)
				}
				if sub.Changes == nil {
					sub.Changes = map[string]string{}
				}
				sub.Changes[k] = v
			}
			return withRequests(f, func(ctx context.Context, s *requests.Service, tenant string) error {
				sub.TenantID = tenant
				if sub.IdentityVerified {
					sub.Proof = requests.Proof{Method: requests.MethodStaff, Actor: f.who()}
				}
				id, err := s.Submit(ctx, sub)
				if err != nil {
					return err
				}
				return printOut(cmd.OutOrStdout(), f.json, map[string]string{"id": id}, func(w io.Writer) {
					fmt.Fprintln(w, id)
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sub.Type, "type", "", "access, portability, rectification, erasure, restriction or objection")
	fl.StringVar(&sub.Subject.Email, "email", "", "the subject's email address")
	fl.StringVar(&sub.Subject.Phone, "phone", "", "the subject's phone number, E.164 (+4915112345678)")
	fl.StringVar(&sub.Subject.CustomerID, "customer-id", "", "the subject's customer number")
	fl.StringVar(&sub.RequestID, "id", "", "request id (default: a new one)")
	fl.StringVar(&received, "received", "", "date the request arrived, YYYY-MM-DD (default: now); deadlines count from it")
	fl.StringVar(&sub.Channel, "channel", "api", "how it arrived: api, post, phone, email")
	fl.StringArrayVar(&changes, "change", nil, "rectification: field=value (repeatable)")
	fl.BoolVar(&sub.IdentityVerified, "verified", false, "staff (--actor) checked every identifier given")
	fl.StringVar(&sub.Language, "language", "en", "language of notices to the subject")
	fl.StringVar(&sub.Regime, "regime", "", "gdpr or ccpa (default: the tenant's)")
	fl.StringVar(&sub.Country, "country", "", "country whose public holidays move the due date (default: the tenant's)")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

func newRequestsListCmd(f *requestsFlags) *cobra.Command {
	var filter requests.Filter
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List requests, soonest due first",
		Example: "  lethe requests list --status pending_approval\n  lethe requests list --due-before 2026-04-01 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRequests(f, func(ctx context.Context, s *requests.Service, tenant string) error {
				rows, err := s.List(ctx, tenant, filter)
				if err != nil {
					return err
				}
				return printOut(cmd.OutOrStdout(), f.json, rows, func(w io.Writer) { printList(w, rows, filter) })
			})
		},
	}
	cmd.Flags().StringVar(&filter.Status, "status", "", "only this status")
	cmd.Flags().StringVar(&filter.DueBefore, "due-before", "", "only requests due before this date (YYYY-MM-DD)")
	cmd.Flags().IntVar(&filter.Limit, "limit", 100, "at most this many")
	return cmd
}

// printList prints a listing as a table, or says that nothing matched and what was asked.
func printList(w io.Writer, rows []requests.Summary, f requests.Filter) {
	if len(rows) == 0 {
		msg := "no requests"
		if f.Status != "" {
			msg += " with status " + f.Status
		}
		if f.DueBefore != "" {
			msg += " due before " + f.DueBefore
		}
		fmt.Fprintln(w, msg)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tRECEIVED\tDUE")
	for _, r := range rows {
		due := r.DueDate
		if r.Extended {
			due += " (extended)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, r.Status, r.ReceivedAt.Format(time.DateOnly), due)
	}
	tw.Flush()
}

func newRequestsShowCmd(f *requestsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a request: status, due date, connectors, timeline and the subject's identifiers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRequests(f, func(ctx context.Context, s *requests.Service, tenant string) error {
				st, err := s.Get(ctx, tenant, args[0])
				if err != nil {
					return err
				}
				return showRequest(ctx, cmd.OutOrStdout(), f, s, tenant, st)
			})
		},
	}
}

func printState(w io.Writer, st domain.RequestState) {
	fmt.Fprintf(w, "%s  %s  %s\n", st.RequestID, st.Type, st.Status)
	fmt.Fprintf(w, "received %s", st.ReceivedAt.Format(time.RFC3339))
	if st.DueDate != "" {
		fmt.Fprintf(w, ", due %s", st.DueDate)
	}
	if st.Extended {
		fmt.Fprintf(w, " (extended: %s)", st.ExtensionReason)
	}
	fmt.Fprintln(w)
	if st.DenialReason != "" {
		fmt.Fprintf(w, "denied: %s\n", st.DenialReason)
	}
	if st.Closed {
		fmt.Fprintf(w, "closed: %s\n", st.FailureReason)
	}
	for _, b := range st.Blocks {
		fmt.Fprintf(w, "blocked: %s (%s)\n", b.Reason, b.Code)
	}
	for _, c := range st.Connectors {
		line := fmt.Sprintf("  %-12s %-12s %s", c.Connector, c.Action, c.Status)
		if c.Error != "" {
			line += ": " + c.Error
		}
		fmt.Fprintln(w, line)
	}
	if st.Export != nil {
		fmt.Fprintf(w, "export: %s (sha256 %s, %d bytes)\n", st.Export.URI, st.Export.SHA256, st.Export.Bytes)
	}
	for _, s := range st.Steps {
		fmt.Fprintf(w, "  %s  %-16s %s\n", s.At.Format(time.RFC3339), s.Status, s.Note)
	}
}

func newDecisionCmd(f *requestsFlags, use, update, short string, needReason bool) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if needReason && strings.TrimSpace(reason) == "" {
				return fmt.Errorf("--reason is required: it is sent to the subject")
			}
			return withRequests(f, func(ctx context.Context, s *requests.Service, tenant string) error {
				st, err := s.Decide(ctx, tenant, args[0], update, workflows.Decision{Actor: f.who(), Reason: reason})
				if err != nil {
					return err
				}
				return printOut(cmd.OutOrStdout(), f.json, st, func(w io.Writer) { printState(w, st) })
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (sent to the subject)")
	return cmd
}

func newRequestsVerifyCmd(f *requestsFlags) *cobra.Command {
	var confirm []string
	cmd := &cobra.Command{
		Use:   "verify ID --confirm IDENTIFIERS",
		Short: "Confirm identifiers staff checked themselves; verifies a request waiting for identity",
		Long: `Record that staff checked, themselves (in person, by a call back), that the named identifiers
belong to the person asking. Only proven identifiers are used to find the subject's data: an
emailed code proves the email address alone (a texted one the phone number alone), so a phone
or customer number the subject typed
waits, unproven, until staff confirm it here (lethe requests show lists them). A request still
waiting for identity is verified by the confirmation (method staff).`,
		Example: "  lethe requests verify R-7K3QF2M9XA --confirm email,customer_id",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRequests(f, func(ctx context.Context, s *requests.Service, tenant string) error {
				st, err := s.ConfirmIdentifiers(ctx, tenant, args[0], f.who(), confirm)
				if err != nil {
					return err
				}
				return showRequest(ctx, cmd.OutOrStdout(), f, s, tenant, st)
			})
		},
	}
	cmd.Flags().StringSliceVar(&confirm, "confirm", nil, "identifiers checked: "+strings.Join(requests.Identifiers, ", "))
	_ = cmd.MarkFlagRequired("confirm")
	return cmd
}

// showRequest prints a request with its subject's identifiers and how each was proven.
func showRequest(ctx context.Context, w io.Writer, f *requestsFlags, s *requests.Service, tenant string, st domain.RequestState) error {
	ids, err := s.ViewSubjectIdentifiers(ctx, tenant, st.RequestID, f.who())
	if err != nil {
		return err
	}
	out := struct {
		domain.RequestState
		Identifiers []requests.Identifier `json:"identifiers"`
	}{st, ids}
	return printOut(w, f.json, out, func(w io.Writer) {
		printState(w, st)
		for _, id := range ids {
			proof := "UNPROVEN: not used to find data until staff confirm it (lethe requests verify " + st.RequestID + " --confirm " + id.Name + ")"
			if id.Proof != nil {
				proof = "proven by " + id.Proof.Method + " (" + id.Proof.Actor + ")"
			}
			fmt.Fprintf(w, "subject %-12s %s  %s\n", id.Name, id.Value, proof)
		}
	})
}

// plural is "1 request", "2 requests".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// printOut prints v as JSON with --json, else as text.
func printOut(w io.Writer, asJSON bool, v any, text func(io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}
