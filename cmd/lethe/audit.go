package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/store"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and read the audit trail",
		Long: `The audit trail is hash-chained per tenant and append-only: PostgreSQL refuses to change or
delete an event. verify recomputes every chain; list reads events by filter.`,
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditListCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var tenant string
	cmd := serviceCmd(&cobra.Command{
		Use:   "verify [--tenant T]",
		Short: "Check every tenant's audit chain; exit non-zero naming the first broken link",
		Args:  cobra.NoArgs,
	}, app.Need{Store: true}, func(ctx context.Context, d *app.Stack, _ []string) error {
		n, err := d.Store.Audit().Verify(ctx, tenant)
		if err != nil {
			return err
		}
		if n == 0 && tenant != "" {
			return fmt.Errorf("--tenant %s: no audit events of this tenant to verify", tenant)
		}
		fmt.Println("audit trail intact:", plural(int(n), "event", "events"), "verified")
		return nil
	})
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's chain (default: every tenant)")
	return cmd
}

func newAuditListCmd() *cobra.Command {
	var f store.AuditFilter
	var since, until string
	var asCSV, asJSON bool
	cmd := serviceCmd(&cobra.Command{
		Use:     "list",
		Short:   "List audit events, newest first, by actor, action, request, subject reference and time",
		Example: "  lethe audit list --tenant salon --request R-7K3QF2M9XA --csv > trail.csv",
		Args:    cobra.NoArgs,
	}, app.Need{Store: true}, func(ctx context.Context, d *app.Stack, _ []string) error {
		var err error
		if f.Since, err = parseTime("--since", since); err != nil {
			return err
		}
		if f.Until, err = parseTime("--until", until); err != nil {
			return err
		}
		events, err := d.Store.Audit().List(ctx, f)
		if err != nil {
			return err
		}
		switch {
		case asCSV:
			return writeAuditCSV(os.Stdout, events)
		case asJSON:
			return printOut(os.Stdout, true, events, nil)
		}
		if len(events) == 0 {
			fmt.Println("no audit events match")
		}
		for _, e := range events {
			fmt.Printf("%s  %-8s %-34s %-16s %s\n", e.At.UTC().Format(time.RFC3339), e.TenantID, e.Action, e.RequestID, e.Actor)
		}
		return nil
	})
	cmd.Flags().StringVar(&f.TenantID, "tenant", "", "only this tenant (default: every tenant)")
	cmd.Flags().StringVar(&f.Actor, "actor", "", "only events by this actor")
	cmd.Flags().StringVar(&f.Action, "action", "", "only this action (e.g. request.approved)")
	cmd.Flags().StringVar(&f.RequestID, "request", "", "only events about this request")
	cmd.Flags().StringVar(&f.SubjectRef, "subject", "", "only events about the subject with this reference")
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this time (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().StringVar(&until, "until", "", "only events before this time (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().IntVar(&f.Limit, "limit", 1000, "at most this many")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV with a header row")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func parseTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: use RFC 3339 (2026-03-01T09:00:00Z) or YYYY-MM-DD", flag, v)
}

func writeAuditCSV(w io.Writer, events []store.Event) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "tenant_id", "seq", "occurred_at", "actor", "action", "request_id", "breach_id", "subject_ref", "event_key", "detail", "prev_hash", "hash"})
	for _, e := range events {
		detail, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("encoding the detail of audit event %d: %w", e.ID, err)
		}
		_ = cw.Write([]string{strconv.FormatInt(e.ID, 10), e.TenantID, strconv.FormatInt(e.Seq, 10), e.At.UTC().Format(time.RFC3339Nano),
			e.Actor, e.Action, e.RequestID, e.BreachID, e.SubjectRef, e.Key, string(detail), e.PrevHash, e.Hash})
	}
	cw.Flush()
	return cw.Error()
}
