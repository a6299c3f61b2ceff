package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

func newDemoCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Drive sample requests through a running `lethe dev` and print each step",
		Long: `Against a running "lethe dev" (in another terminal), submit three requests for customers of
the demo salon, as a subject would: an access request, an erasure, and an erasure for a
customer with a booking still to come. Each is verified with the code from the dev mailbox and
approved where the salon's policy asks for it. Every step is printed with its timing, ending
with where the export is, why the blocked erasure is blocked, and the rows the erasure changed.`,
		Example: "  ./deploy/dev.sh          # terminal 1\n  ./bin/lethe demo         # terminal 2",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			path := os.Getenv(config.EnvFile)
			if path == "" {
				path = filepath.Join(dir, "dev.yaml")
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no running lethe dev found (%s is missing): start ./deploy/dev.sh first", path)
			}
			cfg, err := config.LoadFrom(path, os.LookupEnv)
			if err != nil {
				return err
			}
			d, err := app.New(ctx, cfg, newLogger("text"), app.Need{Store: true, Temporal: true})
			if err != nil {
				return err
			}
			defer d.Close()
			r := &demoRun{out: cmd.OutOrStdout(), svc: d.Requests(), audit: d.Store.Audit(), hooks: d.Store.Webhooks(), cfg: cfg, tenant: "demo", mailbox: cfg.HTTP.PublicURL + "/dev/mailbox", start: time.Now()}
			return r.run(ctx)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".lethe", "the state directory of the running lethe dev")
	return cmd
}

type demoRun struct {
	out     io.Writer
	svc     *requests.Service
	audit   store.Audit
	hooks   store.Webhooks
	cfg     config.Config
	tenant  string
	mailbox string
	start   time.Time
}

func (r *demoRun) step(format string, args ...any) {
	fmt.Fprintf(r.out, "[%6.2fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func (r *demoRun) run(ctx context.Context) error {
	access, err := r.request(ctx, "access request", domain.TypeAccess, connectors.Subject{Email: demo.HealthNotesCustomerEmail})
	if err != nil {
		return err
	}
	erasure, err := r.request(ctx, "erasure request", domain.TypeErasure, connectors.Subject{Email: demo.ClearCustomerEmail, Phone: demo.ClearCustomerPhone})
	if err != nil {
		return err
	}
	blocked, err := r.request(ctx, "erasure request from a customer with a booking to come", domain.TypeErasure, connectors.Subject{Email: demo.FutureBookingCustomerEmail})
	if err != nil {
		return err
	}

	fmt.Fprintln(r.out, "\nSummary")
	if access.Export != nil {
		fmt.Fprintf(r.out, "  export of %s: %s\n    sha256 %s, %d bytes\n", access.RequestID, access.Export.URI, access.Export.SHA256, access.Export.Bytes)
	}
	for _, b := range blocked.Blocks {
		fmt.Fprintf(r.out, "  %s is blocked (%s): %s\n", blocked.RequestID, b.Code, b.Reason)
	}
	for _, c := range erasure.Connectors {
		if c.Action != "erase" || c.Output == nil {
			continue
		}
		var res struct {
			Anonymised map[string]int64 `json:"anonymised"`
			Deleted    map[string]int64 `json:"deleted"`
			Kept       []string         `json:"kept"`
		}
		_ = json.Unmarshal(c.Output.Result, &res)
		fmt.Fprintf(r.out, "  erasure %s in %s: rows anonymised: %s; deleted: %s; kept (de-identified): %s\n",
			erasure.RequestID, c.Connector, rowCounts(res.Anonymised), rowCounts(res.Deleted), listOrNone(res.Kept))
	}
	if err := r.erasureTrail(ctx, erasure.RequestID, demo.ClearCustomerEmail, demo.ClearCustomerPhone); err != nil {
		return err
	}
	return r.webhooks(ctx, erasure.RequestID)
}

// webhooks waits for the webhook delivery of the erasure's completion (the bridge sends it
// shortly after) and prints the request's deliveries and their audit events.
func (r *demoRun) webhooks(ctx context.Context, id string) error {
	t, ok := r.cfg.Tenant(r.tenant)
	if !ok || len(t.Webhooks) == 0 {
		return nil
	}
	var ds []store.Delivery
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		if ds, err = r.hooks.List(ctx, store.DeliveryFilter{RequestID: id}); err != nil {
			return err
		}
		if slices.ContainsFunc(ds, func(d store.Delivery) bool {
			return d.EventType == "request.completed" && d.State != store.DeliveryPending
		}) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Fprintf(r.out, "  webhooks of %s (signed; received at %s/dev/webhooks):\n", id, r.cfg.HTTP.PublicURL)
	for _, d := range slices.Backward(ds) {
		fmt.Fprintf(r.out, "    %s to %s: %s after %d attempt(s), HTTP %d\n", d.EventType, d.Subscription, d.State, d.Attempts, d.LastStatus)
	}
	events, err := r.audit.List(ctx, store.AuditFilter{TenantID: r.tenant, RequestID: id, Action: "webhook.delivered", Limit: 100})
	if err != nil {
		return err
	}
	for _, e := range slices.Backward(events) {
		fmt.Fprintf(r.out, "    audit #%d %s: %v %v\n", e.Seq, e.Action, e.Detail["subscription"], e.Detail["event_type"])
	}
	return nil
}

// erasureTrail prints the connector steps the erasure's audit trail lists, and asks the
// Mailchimp stand-in for the customer, as any Mailchimp client would.
func (r *demoRun) erasureTrail(ctx context.Context, id, email, phone string) error {
	events, err := r.audit.List(ctx, store.AuditFilter{TenantID: r.tenant, RequestID: id, Limit: 1000})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  audit trail of %s, connector steps:\n", id)
	for _, e := range slices.Backward(events) {
		if strings.HasPrefix(e.Action, "connector.") {
			what, _ := json.Marshal(cmp.Or(e.Detail["result"], e.Detail["blocks"], e.Detail["error"]))
			fmt.Fprintf(r.out, "    #%d %s: %v %v %s\n", e.Seq, e.Action, e.Detail["connector"], e.Detail["action"], what)
		}
	}
	if _, ok := r.cfg.Connector("sms"); ok {
		texts, err := app.DevTexts(ctx, r.cfg, r.tenant, phone)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "  twilio stand-in: %d texts left between %s and the salon's sender\n", texts, phone)
	}
	if _, ok := r.cfg.Connector("mailchimp"); !ok {
		return nil
	}
	status, err := app.DevMailchimpMember(ctx, r.cfg, email)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  mailchimp stand-in: the member endpoint for %s in audience %s answers %s\n", email, demo.MailchimpAudience, status)
	return nil
}

// rowCounts reads "bookings 3, customers 1": tables in order, each with its row count.
func rowCounts(m map[string]int64) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
	}
	return listOrNone(parts)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// request walks one request as the subject and the salon's staff would.
func (r *demoRun) request(ctx context.Context, label, typ string, subject connectors.Subject) (domain.RequestState, error) {
	email := subject.Email
	fmt.Fprintf(r.out, "\n%s: %s\n", label, strings.TrimSuffix(email+" "+subject.Phone, " "))
	id, err := r.svc.Submit(ctx, requests.Submission{TenantID: r.tenant, Type: typ, Subject: subject, Channel: "myaccount"})
	if err != nil {
		return domain.RequestState{}, err
	}
	r.step("submitted %s", id)
	st, err := r.await(ctx, id, domain.StatusIdentityPending)
	if err != nil {
		return st, err
	}
	r.step("due %s; waiting for the subject to verify", st.DueDate)
	code, err := r.code(ctx, email, id)
	if err != nil {
		return st, err
	}
	r.step("code found in the dev mailbox")
	if err := r.svc.VerifyCode(ctx, r.tenant, id, code); err != nil {
		return st, err
	}
	r.step("identity verified")
	st, err = r.await(ctx, id, domain.StatusPendingApproval, domain.StatusBlocked, domain.StatusCompleted)
	if err != nil {
		return st, err
	}
	if st.Status == domain.StatusPendingApproval {
		if subject.Phone != "" {
			// The emailed code proved the address only; staff vouch for the number, so the
			// connectors that know the customer by phone (sms) are asked too.
			if _, err := r.svc.ConfirmIdentifiers(ctx, r.tenant, id, "lethe demo", []string{requests.IdentifierPhone}); err != nil {
				return st, err
			}
			r.step("phone number confirmed by the demo's support staff")
		}
		r.step("waiting for approval; approving as the demo's support staff")
		if _, err := r.svc.Decide(ctx, r.tenant, id, workflows.UpdateApprove, workflows.Decision{Actor: "lethe demo"}); err != nil {
			return st, err
		}
		if st, err = r.await(ctx, id, domain.StatusBlocked, domain.StatusCompleted); err != nil {
			return st, err
		}
	}
	for _, c := range st.Connectors {
		r.step("connector %s %s: %s", c.Connector, c.Action, c.Status)
	}
	r.step("%s", st.Status)
	return st, nil
}

// await polls the request until it reaches one of the statuses.
func (r *demoRun) await(ctx context.Context, id string, statuses ...string) (domain.RequestState, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		st, err := r.svc.Get(ctx, r.tenant, id)
		if err == nil {
			for _, s := range statuses {
				if st.Status == s {
					return st, nil
				}
			}
			if domain.Terminal(st.Status) {
				return st, fmt.Errorf("request %s ended %s, expected %s", id, st.Status, strings.Join(statuses, " or "))
			}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("request %s did not reach %s: is lethe dev still running?", id, strings.Join(statuses, " or "))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// code reads the verification code for the request from the dev mailbox.
func (r *demoRun) code(ctx context.Context, email, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	u := r.mailbox + "?format=json&to=" + url.QueryEscape(email)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var msgs []mail.Sent
			err = json.NewDecoder(resp.Body).Decode(&msgs)
			resp.Body.Close()
			for _, m := range msgs {
				if err == nil && m.Kind == mail.KindVerificationCode && m.RequestID == id {
					if c := sixDigits.FindString(m.Text); c != "" {
						return c, nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", errors.New("no verification code arrived in the dev mailbox at " + r.mailbox)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
