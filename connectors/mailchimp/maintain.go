package mailchimp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lethe-privacy/lethe/connectors"
)

// Task params understood by the Mailchimp connector.
const (
	paramLift    = "lift"    // restrict: true lifts the restriction (unarchives)
	paramPurpose = "purpose" // restrict: object to one purpose only (an objection)
)

// Member statuses the connector reads or sets.
const (
	statusSubscribed   = "subscribed"
	statusUnsubscribed = "unsubscribed"
	statusPending      = "pending"
	statusArchived     = "archived"
)

// purposeMarketing is the one purpose an audience is processed for.
const purposeMarketing = "marketing"

// restrictedTag marks an archived member with the status to restore when the restriction is
// lifted: the API unarchives to whatever status it is given and keeps no earlier one.
const restrictedTag = "lethe-restricted-was-"

// Erase deletes the member permanently from every audience: Mailchimp removes their personal
// data and refuses to re-import the address. A member already deleted, or never there, is
// done: the erase succeeds and reports AlreadyApplied when nothing was left to delete.
func (c *Connector) Erase(ctx context.Context, task connectors.Task) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	if err := connectors.CheckParams(task); err != nil {
		return res, err
	}
	hash, err := subjectHash(task)
	if err != nil {
		return res, err
	}
	var deleted int64
	for _, id := range c.cfg.Audiences {
		if hash == "" {
			break
		}
		err := c.api.deletePermanent(ctx, id, hash)
		if notFound(err) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("erasing mailchimp member: %w", err)
		}
		deleted++
	}
	// Subjects counts the subject now absent from every audience, the same on a replay.
	res.Subjects = 1
	res.AlreadyApplied = deleted == 0
	if deleted > 0 {
		res.Deleted = map[string]int64{"members": deleted}
	}
	return res, nil
}

// Rectify sets the fields in params "changes": "email" changes the member's address, fields
// listed in merge_fields change their merge tag. Fields the audience does not hold are
// ignored: a rectification goes to every connector, each correcting what it holds. A member
// already holding the values is left alone (AlreadyApplied).
func (c *Connector) Rectify(ctx context.Context, task connectors.Task) (connectors.RectifyResult, error) {
	var res connectors.RectifyResult
	changes, err := connectors.Changes(task)
	if err != nil {
		return res, err
	}
	want := memberPatch{MergeFields: map[string]any{}}
	for _, field := range slices.Sorted(maps.Keys(changes)) {
		v := changes[field]
		if field == "email" {
			s, ok := v.(string)
			if !ok || !strings.Contains(s, "@") {
				return res, connectors.Permanent(errors.New(`rectify: "email" must be an email address`))
			}
			want.EmailAddress = strings.TrimSpace(s)
		} else if tag, ok := c.cfg.MergeFields[field]; ok {
			want.MergeFields[tag] = v
		}
	}
	found, err := c.subjectMembers(ctx, task)
	if err != nil {
		return res, err
	}
	if want.EmailAddress != "" && len(found) < len(c.cfg.Audiences) {
		// A replay after the address changed finds the member under the new address.
		moved, err := c.members(ctx, subscriberHash(want.EmailAddress))
		if err != nil {
			return res, err
		}
		found = append(found, moved...)
	}
	var updated int64
	for _, h := range found {
		p := want.diff(h.m)
		if p.EmailAddress == "" && len(p.MergeFields) == 0 {
			continue
		}
		if err := c.api.updateMember(ctx, h.audience, h.hash, p); err != nil {
			return res, fmt.Errorf("rectifying mailchimp member: %w", err)
		}
		updated++
	}
	res.AlreadyApplied = len(found) > 0 && updated == 0
	if updated > 0 {
		res.Updated = map[string]int64{"members": updated}
	}
	return res, nil
}

// diff is what of p member m does not hold yet.
func (p memberPatch) diff(m member) memberPatch {
	var out memberPatch
	if p.EmailAddress != "" && !strings.EqualFold(p.EmailAddress, m.EmailAddress) {
		out.EmailAddress = p.EmailAddress
	}
	for tag, v := range p.MergeFields {
		if cur, ok := m.MergeFields[tag]; !ok || fmt.Sprint(cur) != fmt.Sprint(v) {
			if out.MergeFields == nil {
				out.MergeFields = map[string]any{}
			}
			out.MergeFields[tag] = v
		}
	}
	return out
}

// Restrict archives the member in every audience (Art. 18: kept, not processed), remembering
// their status in a tag; params {"lift": true} restores that status. With params
// {"purpose": "marketing"} (an objection) it unsubscribes the member at once instead; other
// purposes are not processed here, so there is nothing to stop.
func (c *Connector) Restrict(ctx context.Context, task connectors.Task) (connectors.RestrictResult, error) {
	var res connectors.RestrictResult
	if err := connectors.CheckParams(task, paramLift, paramPurpose); err != nil {
		return res, err
	}
	lift, _ := task.Params[paramLift].(bool)
	purpose, _ := task.Params[paramPurpose].(string)
	if purpose != "" && lift {
		return res, connectors.Permanent(errors.New("an objection is not lifted by Lethe: the subject subscribes again"))
	}
	res.Restricted = !lift
	if purpose != "" && purpose != purposeMarketing {
		return res, nil
	}
	found, err := c.subjectMembers(ctx, task)
	if err != nil {
		return res, err
	}
	step := c.archive
	switch {
	case purpose != "":
		step = c.unsubscribe
	case lift:
		step = c.unarchive
	}
	for _, h := range found {
		changed, err := step(ctx, h)
		if err != nil {
			return res, err
		}
		if changed {
			res.Rows++
		}
	}
	res.AlreadyApplied = len(found) > 0 && res.Rows == 0
	return res, nil
}

// unsubscribe stops marketing to a subscribed or pending member.
func (c *Connector) unsubscribe(ctx context.Context, h held) (bool, error) {
	if h.m.Status != statusSubscribed && h.m.Status != statusPending {
		return false, nil
	}
	if err := c.api.updateMember(ctx, h.audience, h.hash, memberPatch{Status: statusUnsubscribed}); err != nil {
		return false, fmt.Errorf("unsubscribing mailchimp member: %w", err)
	}
	return true, nil
}

// archive tags the member with their status, then archives them.
func (c *Connector) archive(ctx context.Context, h held) (bool, error) {
	if h.m.Status == statusArchived {
		return false, nil
	}
	if err := c.api.setTags(ctx, h.audience, h.hash, []tag{{Name: restrictedTag + h.m.Status, Status: "active"}}); err != nil {
		return false, fmt.Errorf("restricting mailchimp member: %w", err)
	}
	if err := c.api.archive(ctx, h.audience, h.hash); err != nil {
		return false, fmt.Errorf("restricting mailchimp member: %w", err)
	}
	return true, nil
}

// unarchive restores the status archive remembered: subscribed stays subscribed, anything
// else (or no tag) comes back unsubscribed, since the API cannot set the others.
func (c *Connector) unarchive(ctx context.Context, h held) (bool, error) {
	if h.m.Status != statusArchived {
		return false, nil
	}
	status, mark := statusUnsubscribed, ""
	for _, t := range h.m.Tags {
		if was, ok := strings.CutPrefix(t.Name, restrictedTag); ok {
			mark = t.Name
			if was == statusSubscribed {
				status = was
			}
		}
	}
	if err := c.api.updateMember(ctx, h.audience, h.hash, memberPatch{Status: status}); err != nil {
		return false, fmt.Errorf("lifting the restriction of mailchimp member: %w", err)
	}
	if mark != "" {
		if err := c.api.setTags(ctx, h.audience, h.hash, []tag{{Name: mark, Status: "inactive"}}); err != nil {
			return false, fmt.Errorf("lifting the restriction of mailchimp member: %w", err)
		}
	}
	return true, nil
}
