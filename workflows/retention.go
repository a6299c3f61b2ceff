package workflows

import (
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
)

// RetentionProgressQuery answers a retention run's progress so far (RetentionProgress).
const RetentionProgressQuery = "progress"

// RetentionCommandsPerRun is how many purge commands (or export pages) one run of the
// workflow's history holds before it continues as new: a tenant with unbounded data gets a
// long chain of short histories, never one unbounded one.
const RetentionCommandsPerRun = 50

// exportPage is how many expired exports one sweep deletes.
const exportPage = 100

// purgeOptions are those of a purge command: the connector's runner heartbeats while it works,
// and a command it could not finish is sent again (its batches committed stay done).
var purgeOptions = workflow.ActivityOptions{
	ScheduleToCloseTimeout: 24 * time.Hour, StartToCloseTimeout: time.Hour, HeartbeatTimeout: 2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
		NonRetryableErrorTypes: []string{activities.ErrPermanent}},
}

// RetentionInput starts a tenant's retention run. Progress is set only by the run itself when
// it continues as new.
type RetentionInput struct {
	TenantID string
	DryRun   bool
	// Actor is who started the run: "schedule" or the operator.
	Actor    string
	Progress *RetentionProgress `json:",omitempty"`
}

// RetentionProgress is where a run stands: its plan, the rule it is at and what each did.
type RetentionProgress struct {
	activities.RetentionReport
	Plan activities.RetentionPlan
	// Step is the index of the rule being run; len(Rules) once the exports are next.
	Step int
	// Cursor continues an erase rule's walk in the next command.
	Cursor      string
	ExportsDone bool
	Done        bool
}

// RetentionWorkflow runs a tenant's retention rules through each rule's connector, in purge
// commands of bounded batches over Kafka like every other connector command, then deletes the
// exports of closed requests past their expiry, and records the run with its counts in the
// audit trail. A dry run sends the same commands with dry_run set: each connector counts what
// it would purge and changes nothing. The Temporal Schedule lethe-retention-<tenant> starts it
// every day; lethe retention run starts it by hand.
func RetentionWorkflow(ctx workflow.Context, in RetentionInput) (*RetentionProgress, error) {
	p := in.Progress
	if err := workflow.SetQueryHandler(ctx, RetentionProgressQuery, func() (*RetentionProgress, error) { return p, nil }); err != nil {
		return nil, err
	}
	rctx := workflow.WithActivityOptions(ctx, recordOptions)
	if p == nil {
		p = &RetentionProgress{RetentionReport: activities.RetentionReport{
			RunID: workflow.GetInfo(ctx).WorkflowExecution.ID, TenantID: in.TenantID, Actor: in.Actor,
			DryRun: in.DryRun, StartedAt: workflow.Now(ctx),
		}}
		if err := workflow.ExecuteActivity(rctx, a.RetentionPlan, in.TenantID).Get(ctx, &p.Plan); err != nil {
			return p, err
		}
		for _, s := range p.Plan.Steps {
			p.Rules = append(p.Rules, activities.RuleCount{Connector: s.Connector, Rule: s.Rule})
		}
	}
	dctx := workflow.WithActivityOptions(ctx, purgeOptions)
	commands := 0
	more := func() error {
		commands++
		if commands < RetentionCommandsPerRun {
			return nil
		}
		return workflow.NewContinueAsNewError(ctx, RetentionWorkflow, RetentionInput{TenantID: in.TenantID, DryRun: in.DryRun, Actor: in.Actor, Progress: p})
	}
	if p.DryRun && p.Step == 0 {
		p.dryRun(ctx, dctx)
	}
	for p.Step < len(p.Rules) {
		p.purgeCommand(ctx, dctx)
		if err := more(); err != nil && p.Step < len(p.Rules) {
			return nil, err
		}
	}
	for !p.ExportsDone {
		if err := p.sweepExports(ctx, rctx); err != nil {
			return p, err
		}
		if err := more(); err != nil && !p.ExportsDone {
			return nil, err
		}
	}
	p.EndedAt, p.Done = workflow.Now(ctx), true
	if err := workflow.ExecuteActivity(rctx, a.RecordRetentionRun, p.RetentionReport).Get(ctx, nil); err != nil {
		return p, err
	}
	for _, r := range p.Rules {
		if r.Error != "" {
			return p, temporal.NewNonRetryableApplicationError(fmt.Sprintf("retention rule %s of %s failed: %s", r.Rule, r.Connector, r.Error), "retention_failed", nil)
		}
	}
	return p, nil
}

// dryRun sends each connector one dry-run command listing its rules in the tenant's order: the
// connector purges them in one transaction and rolls it back, so rules that overlap count as
// the run will find them.
func (p *RetentionProgress) dryRun(ctx, dctx workflow.Context) {
	var order []string
	rules := map[string][]any{}
	for _, s := range p.Plan.Steps {
		if rules[s.Connector] == nil {
			order = append(order, s.Connector)
		}
		rules[s.Connector] = append(rules[s.Connector], map[string]any{"rule": s.Rule, "older_than": s.OlderThan.Seconds()})
	}
	futures := make([]workflow.Future, len(order))
	for i, c := range order {
		futures[i] = workflow.ExecuteActivity(dctx, a.DispatchCommand, activities.Dispatch{
			RequestID: commandRef(p.RunID), TenantID: p.TenantID, Connector: c, Action: string(connectors.CapPurge),
			Params: map[string]any{"dry_run": true, "rules": rules[c]}, IdempotencyKey: p.RunID + ":" + c + ":dry-run",
		})
	}
	for i, c := range order {
		var out domain.Output
		var res connectors.PurgeResult
		err := futures[i].Get(ctx, &out)
		if err == nil {
			err = purgeResult(out, &res)
		}
		for j := range p.Rules {
			if r := &p.Rules[j]; r.Connector == c {
				r.Commands++
				if err != nil {
					r.Error = errorMessage(err)
				}
				r.Rows, r.Blocked = res.Rows[r.Rule], res.Blocked[r.Rule]
			}
		}
	}
	p.Step = len(p.Rules)
}

// purgeCommand sends the current rule's next purge command and counts its result. A rule whose
// connector fails is recorded with its error and the run goes on to the next.
func (p *RetentionProgress) purgeCommand(ctx, dctx workflow.Context) {
	step, r := p.Plan.Steps[p.Step], &p.Rules[p.Step]
	params := map[string]any{"rule": step.Rule, "older_than": step.OlderThan.Seconds(), "max_batches": p.Plan.Batches}
	if p.Cursor != "" {
		params["after"] = p.Cursor
	}
	var out domain.Output
	err := workflow.ExecuteActivity(dctx, a.DispatchCommand, activities.Dispatch{
		RequestID: commandRef(p.RunID), TenantID: p.TenantID, Connector: step.Connector, Action: string(connectors.CapPurge), Params: params,
		IdempotencyKey: fmt.Sprintf("%s:%s:%s:%d", p.RunID, step.Connector, step.Rule, r.Commands),
	}).Get(ctx, &out)
	r.Commands++
	var res connectors.PurgeResult
	if err == nil {
		err = purgeResult(out, &res)
	}
	if err != nil {
		r.Error = errorMessage(err)
		p.Step, p.Cursor = p.Step+1, ""
		return
	}
	r.Rows += res.Rows[step.Rule]
	r.Blocked += res.Blocked[step.Rule]
	if !res.More {
		p.Step, p.Cursor = p.Step+1, ""
		return
	}
	p.Cursor = res.Cursor
}

// sweepExports counts (dry run) or deletes one page of the closed requests' expired exports,
// through the export expiry's own activity.
func (p *RetentionProgress) sweepExports(ctx, rctx workflow.Context) error {
	var page activities.ExportSweepResult
	sweep := activities.ExportSweep{TenantID: p.TenantID, Before: p.StartedAt.Add(-p.Plan.ExportsAfter), Limit: exportPage, DryRun: p.DryRun}
	if err := workflow.ExecuteActivity(rctx, a.ExpiredExports, sweep).Get(ctx, &page); err != nil {
		return err
	}
	if p.DryRun {
		p.Exports, p.ExportsDone = page.Count, true
		return nil
	}
	for _, id := range page.Requests {
		if err := workflow.ExecuteActivity(rctx, a.ExpireExport, activities.ExportExpiry{RequestID: id, TenantID: p.TenantID}).Get(ctx, nil); err != nil {
			return err
		}
	}
	p.Exports += int64(len(page.Requests))
	p.ExportsDone = len(page.Requests) < exportPage
	return nil
}

// purgeResult decodes a purge command's result: the same bytes give the same result on replay.
func purgeResult(out domain.Output, res *connectors.PurgeResult) error {
	//workflowcheck:ignore
	return json.Unmarshal(out.Result, res)
}

// commandRef is the run's reference on its commands, where an ID holds only letters, digits,
// '-' and '_', up to 64 (a scheduled run's ID ends in its time, 2026-12-02T03:00:00Z): the
// last 64 characters, which tell runs apart.
func commandRef(runID string) string {
	b := []byte(runID)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[len(b)-64:]
	}
	return string(b)
}
