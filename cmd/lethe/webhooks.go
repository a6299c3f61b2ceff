package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/store"
)

func newWebhooksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "List webhook deliveries and send dead-lettered ones again",
		Long: `Each event a tenant's webhook subscription wants is one delivery, tried with exponential
back-off up to webhooks.max_attempts and then dead-lettered (state dead, with the reason, and on
lethe.dlq). deliveries lists them; redeliver queues a dead one again.`,
	}
	cmd.AddCommand(newWebhooksListCmd(), newWebhooksRedeliverCmd())
	return cmd
}

func newWebhooksListCmd() *cobra.Command {
	var f store.DeliveryFilter
	var asJSON bool
	cmd := serviceCmd(&cobra.Command{
		Use:     "deliveries",
		Short:   "List webhook deliveries, newest first, by tenant, subscription, state and request",
		Example: "  lethe webhooks deliveries --state dead",
		Args:    cobra.NoArgs,
	}, app.Need{Store: true}, func(ctx context.Context, d *app.Stack, _ []string) error {
		if f.State != "" && f.State != store.DeliveryPending && f.State != store.DeliveryDelivered && f.State != store.DeliveryDead {
			return fmt.Errorf("--state %q: use pending, delivered or dead", f.State)
		}
		ds, err := d.Store.Webhooks().List(ctx, f)
		if err != nil {
			return err
		}
		if asJSON {
			return printOut(os.Stdout, true, ds, nil)
		}
		if len(ds) == 0 {
			fmt.Println("no webhook deliveries match")
		}
		for _, x := range ds {
			fmt.Printf("%s  %-9s %-8s %-12s %-28s attempts %d  %s\n", x.CreatedAt.UTC().Format(time.RFC3339), x.State, x.TenantID,
				x.Subscription, x.EventType, x.Attempts, x.ID)
			if x.LastError != "" {
				fmt.Printf("    last error: %s\n", x.LastError)
			}
		}
		return nil
	})
	cmd.Flags().StringVar(&f.TenantID, "tenant", "", "only this tenant")
	cmd.Flags().StringVar(&f.Subscription, "subscription", "", "only this subscription")
	cmd.Flags().StringVar(&f.State, "state", "", "only pending, delivered or dead")
	cmd.Flags().StringVar(&f.RequestID, "request", "", "only deliveries of this request's events")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newWebhooksRedeliverCmd() *cobra.Command {
	return serviceCmd(&cobra.Command{
		Use:   "redeliver DELIVERY_ID",
		Short: "Queue a dead-lettered delivery again, its attempts counted afresh",
		Args:  cobra.ExactArgs(1),
	}, app.Need{Store: true}, func(ctx context.Context, d *app.Stack, args []string) error {
		err := d.Store.Webhooks().Redeliver(ctx, args[0], time.Now())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no dead-lettered delivery %s (lethe webhooks deliveries --state dead lists them)", args[0])
		}
		if err != nil {
			return err
		}
		fmt.Println("queued again:", args[0])
		return nil
	})
}
