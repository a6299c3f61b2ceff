package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/lethe-privacy/lethe/internal/store"
)

// ExportExpiry asks ExpireExport to delete one request's export.
type ExportExpiry struct {
	RequestID string
	TenantID  string
}

// ExportExpiryInput is the input of the workflow that deletes one completed request's export
// when it expires (workflows.ExportExpiryWorkflow).
type ExportExpiryInput struct {
	RequestID string
	TenantID  string
	ExpiresAt time.Time
}

// ExportExpiryStart asks StartExportExpiry to start that workflow on TaskQueue.
type ExportExpiryStart struct {
	ExportExpiryInput
	TaskQueue string
}

// ExportExpiryWorkflow is the name workflows.ExportExpiryWorkflow is registered under (this
// package cannot import workflows, which imports it).
const ExportExpiryWorkflow = "ExportExpiryWorkflow"

// ExportExpiryID is the workflow ID of a request's export expiry: one per request.
func ExportExpiryID(requestID string) string { return requestID + "-export-expiry" }

// workingStatuses are those of a verified request whose work still needs the subject's
// identifiers (the workflow's statuses; workflows imports this package, not the reverse).
var workingStatuses = []string{"pending_approval", "blocked", "in_progress"}

// ForgetSubject deletes every copy of the subject Lethe holds in the tenant: the last step of
// an erasure, after the completion notice went out. It forgets the subject's rows of every
// request of theirs found by the erasure's proven identifiers (unverified, failed, closed),
// their verification codes, every export ZIP and connector file written for them, and their
// address in breach notices already sent (one still to be sent keeps it until then). A
// request of theirs still being worked on (pending approval, blocked, in progress) keeps its
// own copy, so that it does not fail for want of the address; the audit event counts it as
// kept. The audit event holds counts, never values.
func (a *Activities) ForgetSubject(ctx context.Context, requestID string) error {
	subjects := a.Store.Subjects()
	tenant, proven, err := subjects.Proven(ctx, requestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // forgotten by an earlier attempt: the erasure's own row goes last
	}
	if err != nil {
		return err
	}
	theirs, err := subjects.Matching(ctx, tenant, requestID, proven)
	if err != nil {
		return err
	}
	var forget []string
	kept := 0
	for _, r := range theirs {
		if r.ID != requestID && slices.Contains(workingStatuses, r.Status) {
			kept++
			continue
		}
		forget = append(forget, r.ID)
	}

	// Files first: a retry finds the same requests as long as their rows are there.
	files := 0
	for _, id := range forget {
		n, err := a.Exports.RemoveAll(ctx, a.exportPrefix(tenant, id))
		if err != nil {
			return fmt.Errorf("deleting the exports of request %s: %w", id, err)
		}
		files += n
	}
	return pgx.BeginFunc(ctx, a.Store.Pool, func(tx pgx.Tx) error {
		codes, err := a.Store.Codes().Delete(ctx, tx, forget)
		if err != nil {
			return err
		}
		exports, err := a.Store.Requests().DropExports(ctx, tx, tenant, forget)
		if err != nil {
			return err
		}
		forgotten, err := subjects.Delete(ctx, tx, forget)
		if err != nil {
			return fmt.Errorf("forgetting the subject of request %s: %w", requestID, err)
		}
		notices, err := a.Store.Notices().ForgetPerson(ctx, tx, tenant, proven)
		if err != nil {
			return err
		}
		// An expiry date waiting for them has nothing left to purge: erased is purged.
		expiries, err := a.Store.Expiries().Forget(ctx, tx, tenant, proven, a.now())
		if err != nil {
			return err
		}
		detail := map[string]any{
			"requests": forgotten, "verification_codes": codes,
			"export_packages": exports, "export_files": files, "kept_for_open_requests": kept,
			"breach_notice_addresses": notices,
		}
		if expiries > 0 {
			detail["expiry_dates"] = expiries
		}
		return a.auditIn(ctx, tx, requestID+":forget", tenant, "lethe", "subject.forgotten", requestID, detail)
	})
}

// ExpireExport deletes a completed request's export, the package and the connectors' files,
// when it expires, and records how many files went.
func (a *Activities) ExpireExport(ctx context.Context, e ExportExpiry) error {
	n, err := a.Exports.RemoveAll(ctx, a.exportPrefix(e.TenantID, e.RequestID))
	if err != nil {
		return fmt.Errorf("deleting the export of request %s: %w", e.RequestID, err)
	}
	return pgx.BeginFunc(ctx, a.Store.Pool, func(tx pgx.Tx) error {
		if _, err := a.Store.Requests().DropExports(ctx, tx, e.TenantID, []string{e.RequestID}); err != nil {
			return fmt.Errorf("recording the expiry of the export of request %s: %w", e.RequestID, err)
		}
		return a.auditIn(ctx, tx, e.RequestID+":export-expired", e.TenantID, "lethe", "request.export_expired", e.RequestID,
			map[string]any{"export_files": n})
	})
}

// StartExportExpiry starts the export's expiry workflow with a start delay that ends when the
// export expires: Temporal keeps the timer, and the workflow runs its first task only then. Its
// ID is ExportExpiryID; started again (a retried step) while it waits, the start finds it and
// changes nothing.
func (a *Activities) StartExportExpiry(ctx context.Context, s ExportExpiryStart) error {
	_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: ExportExpiryID(s.RequestID), TaskQueue: s.TaskQueue, StartDelay: max(s.ExpiresAt.Sub(a.now()), 0),
	}, ExportExpiryWorkflow, s.ExportExpiryInput)
	if err != nil {
		return fmt.Errorf("starting the expiry of the export of request %s: %w", s.RequestID, err)
	}
	return nil
}

// exportPrefix is where a request's files go: the connectors' files and the package.
func (a *Activities) exportPrefix(tenant, requestID string) string {
	return strings.TrimSuffix(a.ExportBase, "/") + "/" + tenant + "/" + requestID
}
