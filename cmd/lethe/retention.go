package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/retention"
	"github.com/lethe-privacy/lethe/workflows"
)

func newRetentionCmd() *cobra.Command {
	var f requestsFlags // the same --tenant, --json and --actor
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Run a tenant's retention rules now, or show their schedule and last runs",
		Long: `A tenant's retention rules (tenants[].retention) run every day on the Temporal Schedule
lethe-retention-<tenant>, which the worker creates at start: each rule through its connector's
purge, in batches, then the exports of closed requests past exports.expire_after_days. Each run
is recorded in the audit trail with its counts. A worker must be running.` + configHelp,
	}
	cmd.PersistentFlags().StringVar(&f.tenant, "tenant", "", "tenant id (default: the only tenant configured)")
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print JSON")
	cmd.PersistentFlags().StringVar(&f.actor, "actor", "", "who runs it, for the audit trail (default: your user name)")
	cmd.AddCommand(newRetentionRunCmd(&f), newRetentionStatusCmd(&f))
	return cmd
}

func withRetention(f *requestsFlags, fn func(ctx context.Context, s *retention.Service, tenant string) error) error {
	return withTenant(f, func(ctx context.Context, d *app.Stack, tenant string) error { return fn(ctx, d.Retention(), tenant) })
}

func newRetentionRunCmd(f *requestsFlags) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "run [--dry-run]",
		Short: "Run the tenant's retention rules now and wait for the counts; --dry-run only counts",
		Long: `Starts a retention run of the tenant beside the daily one and shows its progress while it
runs, then what each rule purged (rows deleted or anonymised, customers erased; subjects a blocking
rule kept) and the expired exports deleted. With --dry-run every connector counts what the run
would purge and changes nothing: a dry run and a run straight after it agree, and a second run
purges nothing more.`,
		Example: "  lethe retention run --dry-run\n  lethe retention run --tenant salon",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRetention(f, func(ctx context.Context, s *retention.Service, tenant string) error {
				run, err := s.Start(ctx, tenant, "cli:"+f.who(), dryRun, time.Now())
				if err != nil {
					return err
				}
				done := make(chan error, 1)
				var p *workflows.RetentionProgress
				go func() { done <- run.Get(ctx, &p) }()
				if err := watchRetention(ctx, cmd.ErrOrStderr(), s, run.GetID(), done); err != nil {
					return fmt.Errorf("retention run %s: %w", run.GetID(), err)
				}
				if f.json {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(p)
				}
				printRetention(cmd.OutOrStdout(), p)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be purged, change nothing")
	return cmd
}

// watchRetention prints the run's progress to w whenever it changes, until done says the run
// ended.
func watchRetention(ctx context.Context, w io.Writer, s *retention.Service, id string, done <-chan error) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		p, err := s.Progress(ctx, id)
		if err != nil || p == nil {
			continue // between two histories of the run, or not started yet
		}
		line := progressLine(p)
		if line != last {
			fmt.Fprintln(w, line)
			last = line
		}
	}
}

// progressLine says which rule the run is at and what it counted so far.
func progressLine(p *workflows.RetentionProgress) string {
	var rows int64
	for _, r := range p.Rules {
		rows += r.Rows
	}
	at := "exports"
	if p.Step < len(p.Rules) {
		r := p.Rules[p.Step]
		at = fmt.Sprintf("%s on %s (%d so far, %d commands)", r.Rule, r.Connector, r.Rows, r.Commands)
	}
	return fmt.Sprintf("rule %d of %d: %s; %d records in all", min(p.Step+1, len(p.Rules)), len(p.Rules), at, rows)
}

func printRetention(w io.Writer, p *workflows.RetentionProgress) {
	verb := "purged"
	if p.DryRun {
		verb = "would purge"
	}
	fmt.Fprintf(w, "retention run %s (%s): %s\n", p.RunID, p.Actor, verb)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tRULE\tRECORDS\tBLOCKED\tCOMMANDS\tERROR")
	for _, r := range p.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", r.Connector, r.Rule, r.Rows, r.Blocked, r.Commands, r.Error)
	}
	fmt.Fprintf(tw, "lethe\texpired exports\t%d\t\t\t\n", p.Exports)
	_ = tw.Flush()
}

func newRetentionStatusCmd(f *requestsFlags) *cobra.Command {
	var runs int
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the tenant's retention rules, its schedule's next runs and the last runs recorded",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRetention(f, func(ctx context.Context, s *retention.Service, tenant string) error {
				st, err := s.Status(ctx, tenant, runs)
				if err != nil {
					return err
				}
				if f.json {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(st)
				}
				printStatus(cmd.OutOrStdout(), st)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 10, "how many of the last runs to show")
	return cmd
}

func printStatus(w io.Writer, st retention.Status) {
	fmt.Fprintf(w, "schedule %s: daily at %02d:00 UTC", st.Schedule, st.Hour)
	if st.Paused {
		fmt.Fprint(w, " (paused)")
	}
	fmt.Fprintln(w)
	for _, t := range st.Next[:min(3, len(st.Next))] {
		fmt.Fprintf(w, "  next: %s\n", t.UTC().Format(time.RFC3339))
	}
	for _, r := range st.Rules {
		after, _ := r.After.MarshalText()
		fmt.Fprintf(w, "rule %s of %s after %s\n", r.Name, r.Connector, after)
	}
	fmt.Fprintf(w, "subjects waiting for their expiry date: %d\n", st.PendingExpiries)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDED\tKIND\tACTOR\tRECORDS\tEXPORTS")
	for _, e := range st.Runs {
		kind := "run"
		if e.Action != "retention.run" {
			kind = "dry run"
		}
		var records float64
		rules, _ := e.Detail["rules"].([]any)
		for _, r := range rules {
			m, _ := r.(map[string]any)
			n, _ := m["rows"].(float64)
			records += n
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%v\n", e.At.UTC().Format(time.RFC3339), kind, e.Actor, records, e.Detail["exports"])
	}
	_ = tw.Flush()
}
