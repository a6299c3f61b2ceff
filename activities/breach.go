package activities

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/slackmsg"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// BreachStep is one change to a breach, recorded by RecordBreach in the register and the audit
// trail (one transaction) and then on lethe.events.
type BreachStep struct {
	// Key makes the record idempotent across activity retries: breach id + step number.
	Key  string
	Open bool // the first step: the breach enters the register
	// Breach holds the breach's changing fields; Facts and State are encoded here.
	Breach store.BreachRow
	Facts  any
	State  any
	// What the step adds, if anything.
	Content      *store.BreachContent
	Assessment   *store.BreachAssessment
	Notification *store.BreachNotification
	// Clocks are every clock of the breach as it now stands.
	Clocks []store.BreachClock
	Actor  string
	Action string // audit action and event type, e.g. "breach.assessed"
	At     time.Time
	// Detail is what the audit event and the event record besides the action: references and
	// numbers (rule ids, versions, risk levels), never the content's text.
	Detail map[string]any
}

// RecordBreach writes one step of a breach. A retried step writes nothing twice: every insert is
// keyed, and the audit event carries the step's key.
func (a *Activities) RecordBreach(ctx context.Context, s BreachStep) error {
	row := s.Breach
	var err error
	if row.Facts, err = json.Marshal(s.Facts); err != nil {
		return permanent("encoding the facts of breach "+row.ID, err)
	}
	if row.State, err = json.Marshal(s.State); err != nil {
		return permanent("encoding the state of breach "+row.ID, err)
	}
	row.UpdatedAt = s.At
	if s.Detail == nil {
		s.Detail = map[string]any{}
	}
	err = pgx.BeginFunc(ctx, a.Store.Pool, func(tx pgx.Tx) error {
		b := a.Store.Breaches()
		if s.Open {
			row.OpenedAt = s.At
			if _, err := b.Open(ctx, tx, row); err != nil {
				return err
			}
		} else if err := b.Update(ctx, tx, row); err != nil {
			return err
		}
		if err := b.SetClocks(ctx, tx, s.Clocks); err != nil {
			return err
		}
		if s.Content != nil {
			if err := b.AddContent(ctx, tx, *s.Content); err != nil {
				return err
			}
		}
		if s.Assessment != nil {
			if err := b.AddAssessment(ctx, tx, *s.Assessment); err != nil {
				return err
			}
		}
		if s.Notification != nil {
			if err := b.AddNotification(ctx, tx, *s.Notification); err != nil {
				return err
			}
		}
		_, err := a.Store.Audit().Append(ctx, tx, store.Event{Key: s.Key, TenantID: row.TenantID, At: a.now(),
			Actor: s.Actor, Action: s.Action, BreachID: row.ID, Detail: s.Detail})
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
		// A data exception (a value PostgreSQL cannot store) fails every retry alike, and the
		// breach's updates would wait on it for ever.
		return permanent("recording breach "+row.ID, err)
	}
	if err != nil {
		return err
	}
	return a.publish(ctx, bus.TopicEvents, row.ID, bus.Event{
		Schema: schemas.Event, Version: schemas.Version, ID: s.Key, Type: s.Action, TenantID: row.TenantID,
		BreachID: row.ID, Status: row.Status, OccurredAt: s.At.UTC(), Data: s.Detail,
	})
}

// BreachAlarm is a reminder that a breach's notification clock nears its limit, or the
// escalation once the limit has passed with nobody notified.
type BreachAlarm struct {
	Key      string
	BreachID string
	TenantID string
	Kind     string // "reminder" or "escalation"
	Rule     string
	Regime   string
	Notify   string // who must be told
	Limit    string
	Due      time.Time
	At       time.Time
	// Clock is the clock as it stands after the alarm (escalated), written with its audit event.
	Clock *store.BreachClock
}

// RemindBreach records a breach clock's reminder or escalation, publishes it on lethe.events and
// emails it, as Remind does for requests: a reminder to the tenant's staff and DPO, the
// escalation to the DPO. The email names the breach, the rule and its due time, nothing more.
func (a *Activities) RemindBreach(ctx context.Context, r BreachAlarm) error {
	t := a.Tenants[r.TenantID]
	action, actor, kind := "breach.clock_reminder", "lethe", mail.KindBreachClockReminder
	to := map[string]string{"dpo": t.DPOAddress()}
	if r.Kind == "escalation" {
		action, actor, kind = "breach.clock_escalated", "lethe (escalation to the DPO)", mail.KindBreachClockEscalation
	} else if t.StaffAddress() != t.DPOAddress() {
		to["staff"] = t.StaffAddress()
	}
	detail := map[string]any{"rule": r.Rule, "due_at": r.Due.UTC().Format(time.RFC3339), "kind": r.Kind}
	err := pgx.BeginFunc(ctx, a.Store.Pool, func(tx pgx.Tx) error {
		if r.Clock != nil {
			if err := a.Store.Breaches().SetClocks(ctx, tx, []store.BreachClock{*r.Clock}); err != nil {
				return err
			}
		}
		_, err := a.Store.Audit().Append(ctx, tx, store.Event{Key: r.Key, TenantID: r.TenantID, At: a.now(), Actor: actor,
			Action: action, BreachID: r.BreachID, Detail: detail})
		return err
	})
	if err != nil {
		return err
	}
	err = a.publish(ctx, bus.TopicEvents, r.BreachID, bus.Event{
		Schema: schemas.Event, Version: schemas.Version, ID: r.Key, Type: action, TenantID: r.TenantID,
		BreachID: r.BreachID, OccurredAt: r.At.UTC(), Data: detail,
	})
	if err != nil {
		return err
	}
	data := map[string]any{"BreachID": r.BreachID, "Notify": r.Notify, "Regime": r.Regime, "DueAt": r.Due.UTC(), "Limit": r.Limit}
	about := store.Event{TenantID: r.TenantID, BreachID: r.BreachID}
	var mailed error
	for _, who := range slices.Sorted(maps.Keys(to)) {
		if mailed = a.mailStaff(ctx, r.Key+":mail:"+who, kind, to[who], about, func(context.Context) (map[string]any, error) { return data, nil }); mailed != nil {
			break
		}
	}
	return a.alsoSlack(ctx, mailed, r.TenantID, r.Key, func(context.Context) (slackmsg.Alert, error) {
		return slackmsg.BreachAlert(r.Kind, r.BreachID, r.Rule, r.Notify, r.Due, slackmsg.HoursLeft(r.Due, a.now())), nil
	})
}
