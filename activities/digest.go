package activities

import (
	"context"
	"slices"
	"time"

	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/store"
)

// DigestDays is how far ahead the daily digest looks for requests coming due.
const DigestDays = 7

// DigestQuery asks for one tenant's digest as of At.
type DigestQuery struct {
	TenantID string
	At       time.Time
}

// DigestPost is a tenant's digest to post.
type DigestPost struct {
	TenantID string
	Digest   slackmsg.Digest
}

// SlackTenants lists the tenants with Slack settings, the digest's recipients.
func (a *Activities) SlackTenants(context.Context) ([]string, error) {
	var out []string
	for id, t := range a.Tenants {
		if t.Slack != nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Digest lists a tenant's open requests due within DigestDays days (overdue ones too) and its
// open breaches' running clocks with the hours left, as of q.At.
func (a *Activities) Digest(ctx context.Context, q DigestQuery) (slackmsg.Digest, error) {
	today := q.At.UTC().Format(time.DateOnly)
	d := slackmsg.Digest{Date: today}
	day, _ := time.Parse(time.DateOnly, today)
	reqs, err := a.Store.Requests().List(ctx, store.RequestFilter{TenantID: q.TenantID, DueBefore: day.AddDate(0, 0, DigestDays+1), Limit: 1000})
	if err != nil {
		return d, err
	}
	for _, r := range reqs {
		if r.DueDate == "" || domain.Terminal(r.Status) {
			continue
		}
		due, _ := time.Parse(time.DateOnly, r.DueDate)
		d.Requests = append(d.Requests, slackmsg.DueRequest{ID: r.ID, Type: r.Type, DueDate: r.DueDate, DaysLeft: int(due.Sub(day).Hours() / 24)})
	}
	clocks, err := a.Store.Breaches().RunningClocks(ctx, q.TenantID)
	if err != nil {
		return d, err
	}
	for _, c := range clocks {
		d.Breaches = append(d.Breaches, slackmsg.OpenBreach{ID: c.BreachID, Rule: c.RuleID, Due: *c.DueAt, HoursLeft: slackmsg.HoursLeft(*c.DueAt, q.At)})
	}
	return d, nil
}

// PostDigest posts a tenant's digest to its channel, once per tenant and day.
func (a *Activities) PostDigest(ctx context.Context, p DigestPost) error {
	return a.postAlert(ctx, p.TenantID, "digest:"+p.TenantID+":"+p.Digest.Date, false,
		slackmsg.DigestText(p.Digest), slackmsg.DigestBlocks(p.Digest))
}
