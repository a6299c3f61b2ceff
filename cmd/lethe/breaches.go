package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/breachclock"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

func newBreachesCmd() *cobra.Command {
	var f requestsFlags // the same --tenant, --json and --actor
	cmd := &cobra.Command{
		Use:   "breaches",
		Short: "Open, list, show, assess and record the notifications of personal-data breaches",
		Long: `Operate on the breach register directly against Temporal and PostgreSQL: open a breach with the
time the tenant became aware of it (the clocks count from then, not from the opening), list the
register, show one breach with every notification clock and the hours left on each, record the
DPO's risk assessment, a notification made under one clock (a late one needs the reasons for the
delay), a listed company's materiality determination, and close a breach. Entries go to the
breach's workflow, which checks them and says why it refuses one.` + configHelp,
	}
	cmd.PersistentFlags().StringVar(&f.tenant, "tenant", "", "tenant id (default: the only tenant configured)")
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print JSON")
	cmd.PersistentFlags().StringVar(&f.actor, "actor", "", "who makes the entry, for the audit trail (default: your user name)")
	cmd.AddCommand(newBreachesOpenCmd(&f), newBreachesListCmd(&f), newBreachesShowCmd(&f), newBreachesAssessCmd(&f),
		newBreachesNotifyCmd(&f), newBreachesMaterialCmd(&f), newBreachesCloseCmd(&f), newBreachesReportCmd(&f))
	return cmd
}

// withBreaches connects to PostgreSQL and Temporal and runs fn with the breach service.
func withBreaches(f *requestsFlags, fn func(ctx context.Context, s *breaches.Service, tenant string) error) error {
	return withTenant(f, func(ctx context.Context, d *app.Stack, tenant string) error { return fn(ctx, d.Breaches(), tenant) })
}

func newBreachesOpenCmd(f *requestsFlags) *cobra.Command {
	var o breaches.Opening
	var content store.Art33
	var aware, determined string
	var affected []string
	cmd := &cobra.Command{
		Use:   "open --title TEXT --aware-at TIME",
		Short: "Open a breach; its notification clocks start from the time of awareness",
		Example: `  lethe breaches open --title "Stolen laptop" --aware-at 2026-03-06T16:00:00+01:00 --affected DE=120 --affected US-CA=3
  lethe breaches open --id B-2026-07 --title "Misdirected email" --aware-at 2026-03-06T09:30:00Z --nature "A list went to the wrong customer"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.AwareAt, err = time.Parse(time.RFC3339, aware); err != nil {
				return fmt.Errorf("--aware-at %q: want an RFC 3339 time such as 2026-03-06T16:00:00+01:00", aware)
			}
			if determined != "" {
				t, err := time.Parse(time.RFC3339, determined)
				if err != nil {
					return fmt.Errorf("--determined-at %q: want an RFC 3339 time", determined)
				}
				o.DeterminedAt = &t
			}
			for _, a := range affected {
				j, n, ok := strings.Cut(a, "=")
				count, err := strconv.Atoi(n)
				if !ok || err != nil {
					return fmt.Errorf("--affected %q: want JURISDICTION=COUNT, e.g. US-CA=600", a)
				}
				o.Affected = append(o.Affected, breachclock.Residents{Jurisdiction: strings.ToUpper(j), Count: count})
			}
			if content.Nature != "" {
				o.Content = &content
			}
			return withBreaches(f, func(ctx context.Context, s *breaches.Service, tenant string) error {
				o.TenantID, o.OpenedBy = tenant, f.who()
				id, err := s.Open(ctx, o)
				note := ""
				if errors.Is(err, breaches.ErrDuplicate) {
					err, note = nil, " (already open: the same breach)"
				}
				if err != nil {
					return err
				}
				return printOut(cmd.OutOrStdout(), f.json, map[string]string{"id": id}, func(w io.Writer) { fmt.Fprintln(w, id+note) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.BreachID, "id", "", "breach id (default: a new one); opening the same id again is the same breach")
	fl.StringVar(&o.Title, "title", "", "a short name staff know the breach by")
	fl.StringVar(&aware, "aware-at", "", "when the tenant became aware of the breach (RFC 3339); the clocks count from it")
	fl.StringVar(&determined, "determined-at", "", "when a breach was determined to have occurred, where it differs (US state laws)")
	fl.StringArrayVar(&affected, "affected", nil, "affected people by where they live: JURISDICTION=COUNT, ISO 3166 (DE, US-CA); repeatable")
	fl.StringVar(&content.Nature, "nature", "", "the nature of the breach (Art. 33(3)(a)); more content follows with the API")
	_ = cmd.MarkFlagRequired("title")
	_ = cmd.MarkFlagRequired("aware-at")
	return cmd
}

func newBreachesListCmd(f *requestsFlags) *cobra.Command {
	var status string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the breach register, latest awareness first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBreaches(f, func(ctx context.Context, s *breaches.Service, tenant string) error {
				rows, err := s.List(ctx, tenant, status, limit)
				if err != nil {
					return err
				}
				return printOut(cmd.OutOrStdout(), f.json, rows, func(w io.Writer) { printBreaches(w, rows, status) })
			})
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only open or closed breaches")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return cmd
}

func printBreaches(w io.Writer, rows []store.BreachRow, status string) {
	if len(rows) == 0 {
		msg := "no breaches"
		if status != "" {
			msg += " with status " + status
		}
		fmt.Fprintln(w, msg)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tAWARE\tRISK\tTITLE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.AwareAt.UTC().Format(time.RFC3339), cmp.Or(r.Risk, "not assessed"), r.Title)
	}
	tw.Flush()
}

func newBreachesShowCmd(f *requestsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a breach: every notification clock with the hours left, the content and the timeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBreaches(f, func(ctx context.Context, s *breaches.Service, tenant string) error {
				st, err := s.Get(ctx, tenant, args[0])
				if err != nil {
					return err
				}
				return printOut(cmd.OutOrStdout(), f.json, st, func(w io.Writer) { printBreach(w, st) })
			})
		},
	}
}

func printBreach(w io.Writer, st workflows.BreachState) {
	fmt.Fprintf(w, "%s  %s  %s\n", st.BreachID, st.Status, st.Title)
	fmt.Fprintf(w, "aware %s, risk %s, content version %d\n", st.AwareAt.UTC().Format(time.RFC3339), cmp.Or(st.Risk, "not assessed"), st.ContentVersion)
	if len(st.Missing) > 0 {
		fmt.Fprintf(w, "missing: %s\n", strings.Join(st.Missing, "; "))
	}
	printNotices(w, st)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLOCK\tNOTIFY\tSTATUS\tDUE\tLEFT")
	for _, c := range st.Clocks {
		due, left := "-", "-"
		switch {
		case c.Kind == breachclock.Record:
			due = "documented, not notified"
		case c.Waiting != "":
			due = "waits for " + c.Waiting
		case !c.Due.IsZero():
			due = c.Due.UTC().Format(time.RFC3339)
			if c.Kind == breachclock.Open {
				due += " (target)"
			}
		}
		if c.RemainingSeconds != nil {
			h := float64(*c.RemainingSeconds) / 3600
			left = fmt.Sprintf("%.1f h", h)
			if h < 0 {
				left = fmt.Sprintf("%.1f h past", -h)
			}
		}
		status := c.Status
		if n := c.Notification; n != nil {
			status += " " + n.NotifiedAt.UTC().Format(time.RFC3339)
			if n.LateReasons != "" {
				status += " (late: " + n.LateReasons + ")"
			}
			if n.Exemption != "" {
				status += " (Art. 34(3): " + string(n.Exemption) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Rule, c.Notify, status, due, left)
	}
	tw.Flush()
	for _, s := range st.Steps {
		fmt.Fprintf(w, "  %s  %s\n", s.At.UTC().Format(time.RFC3339), s.Note)
	}
}

// entryCmd sends one entry to a breach and prints the breach as it then stands.
func entryCmd(f *requestsFlags, c *cobra.Command, update string, arg func() (any, error)) *cobra.Command {
	c.Args = cobra.ExactArgs(1)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		v, err := arg()
		if err != nil {
			return err
		}
		return withBreaches(f, func(ctx context.Context, s *breaches.Service, tenant string) error {
			st, err := s.Update(ctx, tenant, args[0], update, v)
			if err != nil {
				return err
			}
			return printOut(cmd.OutOrStdout(), f.json, st, func(w io.Writer) { printBreach(w, st) })
		})
	}
	return c
}

func optionalTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("--%s %q: want an RFC 3339 time", flag, s)
	}
	return t, nil
}

func newBreachesAssessCmd(f *requestsFlags) *cobra.Command {
	var as workflows.BreachAssessment
	c := &cobra.Command{Use: "assess ID --risk none|risk|high --rationale TEXT", Short: "Record the DPO's risk assessment of a breach"}
	c.Flags().StringVar(&as.Risk, "risk", "", "none (not notifiable), risk (notify the authority) or high (also the people affected)")
	c.Flags().StringVar(&as.Rationale, "rationale", "", "why (kept in the register)")
	return entryCmd(f, c, workflows.UpdateBreachAssessment, func() (any, error) { as.Actor = f.who(); return as, nil })
}

func newBreachesNotifyCmd(f *requestsFlags) *cobra.Command {
	var n workflows.BreachNotification
	var at string
	c := &cobra.Command{Use: "notify ID (--rule RULE | --find FINDER | --csv FILE)",
		Short: "Record a notification made under one of a breach's clocks, or notify the people affected",
		Long: `With --rule, record a notification made under one of the breach's clocks. With --find or --csv, start
notifying the people affected by a high-risk breach (Art. 34) by email: those the tenant's connectors
find (each instance that declares find runs each finder), or those a CSV of email[,phone[,name]] rows
lists (checked whole: with any bad row nothing is listed, and each bad line is named). Everyone gets
one message however often listed; lethe breaches show counts sent, failed and delivered.`,
		Example: `  lethe breaches notify B-7K3QF2M9XA --rule gdpr-art33-authority --reference BfDI-2026-118
  lethe breaches notify B-7K3QF2M9XA --rule lgpd-anpd --at 2026-03-09T10:00:00-03:00 --late-reasons "..."
  lethe breaches notify B-7K3QF2M9XA --rule gdpr-art34-subjects --exemption encrypted --rationale "AES-256 at rest, key not taken"
  lethe breaches notify B-7K3QF2M9XA --find customers_with_health_notes
  lethe breaches notify B-7K3QF2M9XA --find "customers_created_between?from=2026-01-01&to=2026-03-01"
  lethe breaches notify B-7K3QF2M9XA --csv affected.csv`}
	c.Flags().StringVar(&n.Rule, "rule", "", "the clock (lethe breaches show lists them)")
	c.Flags().StringVar(&at, "at", "", "when the notification was made (RFC 3339; default: now)")
	c.Flags().StringVar(&n.Reference, "reference", "", "the recipient's reference, e.g. a case number")
	c.Flags().StringVar(&n.LateReasons, "late-reasons", "", "the reasons for the delay (required after the limit)")
	c.Flags().Var(exemptionFlag{&n.Exemption}, "exemption", "instead of a notification, the Art. 34(3) ground for not telling the people individually: encrypted, neutralised or disproportionate (then --reference names the public communication)")
	c.Flags().StringVar(&n.Rationale, "rationale", "", "why the exemption holds (required with --exemption)")
	return withSubjectNotice(f, entryCmd(f, c, workflows.UpdateBreachNotification, func() (any, error) {
		t, err := optionalTime("at", at)
		n.NotifiedAt, n.Actor = t, f.who()
		return n, err
	}), &n.Rule)
}

func newBreachesMaterialCmd(f *requestsFlags) *cobra.Command {
	var m workflows.BreachMateriality
	var at string
	c := &cobra.Command{Use: "material ID", Short: "Record a listed company's determination that the incident is material (starts the SEC clock)"}
	c.Flags().StringVar(&at, "at", "", "when it was determined (RFC 3339; default: now)")
	return entryCmd(f, c, workflows.UpdateBreachMateriality, func() (any, error) {
		t, err := optionalTime("at", at)
		m.DeterminedAt, m.Actor = t, f.who()
		return m, err
	})
}

func newBreachesCloseCmd(f *requestsFlags) *cobra.Command {
	var reason string
	c := &cobra.Command{Use: "close ID --reason TEXT", Short: "Close a breach once no clock runs with nobody notified; it stays in the register"}
	c.Flags().StringVar(&reason, "reason", "", "why it is closed")
	return entryCmd(f, c, workflows.UpdateBreachClose, func() (any, error) { return workflows.Decision{Actor: f.who(), Reason: reason}, nil })
}

// exemptionFlag refuses a ground Art. 34(3) does not know before anything is sent.
type exemptionFlag struct{ e *breachclock.Exemption }

func (f exemptionFlag) String() string {
	if f.e == nil {
		return ""
	}
	return string(*f.e)
}

func (f exemptionFlag) Set(v string) error {
	if !slices.Contains(breachclock.Exemptions, breachclock.Exemption(v)) {
		return fmt.Errorf("want encrypted, neutralised or disproportionate")
	}
	*f.e = breachclock.Exemption(v)
	return nil
}

func (exemptionFlag) Type() string { return "ground" }
