package mailchimp

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/lethe-privacy/lethe/connectors"
)

// The tables an access streams. Tags and activity are read page by page, each page written
// to the sink before the next is asked for.
var (
	membersTable = connectors.Table{Name: "members", Columns: []connectors.Column{
		{Name: "audience_id"}, {Name: "email_address", Category: connectors.CategoryContact},
		{Name: "full_name", Category: connectors.CategoryIdentity}, {Name: "status", Category: connectors.CategoryMarketing},
		{Name: "email_type", Category: connectors.CategoryMarketing}, {Name: "language", Category: connectors.CategoryIdentity},
		{Name: "ip_signup", Category: connectors.CategoryContact}, {Name: "timestamp_signup"},
		{Name: "ip_opt", Category: connectors.CategoryContact}, {Name: "timestamp_opt"},
		{Name: "last_changed"}, {Name: "source"},
	}}
	mergeFieldsTable = connectors.Table{Name: "merge_fields", Columns: []connectors.Column{
		{Name: "audience_id"}, {Name: "merge_tag"}, {Name: "value", Category: connectors.CategoryContact},
	}}
	permissionsTable = connectors.Table{Name: "marketing_permissions", Columns: []connectors.Column{
		{Name: "audience_id"}, {Name: "permission_id"}, {Name: "text"}, {Name: "enabled", Category: connectors.CategoryMarketing},
	}}
	tagsTable = connectors.Table{Name: "tags", Columns: []connectors.Column{
		{Name: "audience_id"}, {Name: "tag", Category: connectors.CategoryMarketing}, {Name: "date_added"},
	}}
	activityTable = connectors.Table{Name: "activity", Columns: []connectors.Column{
		{Name: "audience_id"}, {Name: "activity_type", Category: connectors.CategoryMarketing}, {Name: "created_at"},
		{Name: "campaign_id"}, {Name: "campaign_title"},
	}}
)

// Access streams what each audience holds about the subject, table by table. A subject no
// audience has streams nothing.
func (c *Connector) Access(ctx context.Context, task connectors.Task, sink connectors.RecordSink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	if err := connectors.CheckParams(task); err != nil {
		return res, err
	}
	found, err := c.subjectMembers(ctx, task)
	if err != nil || len(found) == 0 {
		return res, err
	}
	tables := []struct {
		t    connectors.Table
		rows func(h held, row func(...any) error) error
	}{
		{membersTable, func(h held, row func(...any) error) error {
			m := h.m
			return row(h.audience, m.EmailAddress, m.FullName, m.Status, m.EmailType, m.Language, m.IPSignup, m.TimestampSignup, m.IPOpt, m.TimestampOpt, m.LastChanged, m.Source)
		}},
		{mergeFieldsTable, func(h held, row func(...any) error) error {
			for _, tag := range slices.Sorted(maps.Keys(h.m.MergeFields)) {
				if err := row(h.audience, tag, fmt.Sprint(h.m.MergeFields[tag])); err != nil {
					return err
				}
			}
			return nil
		}},
		{permissionsTable, func(h held, row func(...any) error) error {
			for _, p := range h.m.MarketingPermissions {
				if err := row(h.audience, p.ID, p.Text, p.Enabled); err != nil {
					return err
				}
			}
			return nil
		}},
		{tagsTable, func(h held, row func(...any) error) error {
			return pages(func(offset int) (int, int, error) {
				tags, total, err := c.api.tags(ctx, h.audience, h.hash, offset)
				for _, t := range tags {
					if err == nil {
						err = row(h.audience, t.Name, t.DateAdded)
					}
				}
				return len(tags), total, err
			})
		}},
		{activityTable, func(h held, row func(...any) error) error {
			return pages(func(offset int) (int, int, error) {
				acts, total, err := c.api.activities(ctx, h.audience, h.hash, offset)
				for _, a := range acts {
					if err == nil {
						err = row(h.audience, a.Type, a.CreatedAt, a.CampaignID, a.CampaignTitle)
					}
				}
				return len(acts), total, err
			})
		}},
	}
	w := &streamer{sink: sink, res: &res}
	for _, spec := range tables {
		if err := w.table(ctx, spec.t, func(row func(...any) error) error {
			for _, h := range found {
				if err := spec.rows(h, row); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// pages calls read with growing offsets until it has read total items or a page is empty.
func pages(read func(offset int) (n, total int, err error)) error {
	for offset := 0; ; {
		n, total, err := read(offset)
		if err != nil {
			return err
		}
		offset += n
		if n == 0 || offset >= total {
			return nil
		}
	}
}

// streamer writes tables to a sink, counting them, and stops at cancellation.
type streamer struct {
	sink connectors.RecordSink
	res  *connectors.AccessResult
}

func (w *streamer) table(ctx context.Context, t connectors.Table, rows func(row func(...any) error) error) error {
	if err := w.sink.BeginTable(ctx, t); err != nil {
		return err
	}
	w.res.Tables++
	err := rows(func(values ...any) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading mailchimp %s: %w", t.Name, err)
		}
		w.res.Rows++
		return w.sink.WriteRow(ctx, values)
	})
	if err != nil {
		return err
	}
	return w.sink.EndTable(ctx)
}
