package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ExportExpiry asks ExpireExport to delete one request's export.
type ExportExpiry struct {
	RequestID string
	TenantID  string
}

// workingStatuses are those of a verified request whose work still needs the subject's
// identifiers (the workflow's statuses; workflows imports this package, not the reverse).
var workingStatuses = []string{"pending_approval", "blocked", "in_progress"}

// ForgetSubject deletes every copy of the subject Lethe holds in the tenant: the last step of
// an erasure, after the completion notice went out. It forgets the subject's rows of every
// request of theirs found by the erasure's proven identifiers (unverified, failed, closed),
// their verification codes, and every export ZIP and connector file written for them. A
// request of theirs still being worked on (pending approval, blocked, in progress) keeps its
// own copy, so that it does not fail for want of the address; the audit event counts it as
// kept. The audit event holds counts, never values.
func (a *Activities) ForgetSubject(ctx context.Context, requestID string) error {
	var tenant string
	var email, phone, customer *string
	err := a.Store.Pool.QueryRow(ctx, `SELECT tenant_id, `+provenIdentifiers+` FROM request_subjects WHERE request_id = $1`,
		requestID).Scan(&tenant, &email, &phone, &customer)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // forgotten by an earlier attempt: the erasure's own row goes last
	}
	if err != nil {
		return fmt.Errorf("reading the subject of request %s: %w", requestID, err)
	}
	rows, err := a.Store.Pool.Query(ctx, `
		SELECT rs.request_id, r.status FROM request_subjects rs JOIN requests r ON r.id = rs.request_id
		WHERE rs.tenant_id = $1
		  AND (rs.request_id = $2 OR lower(rs.email) = lower($3::text) OR rs.phone = $4::text OR rs.customer_id = $5::text)`,
		tenant, requestID, email, phone, customer)
	if err != nil {
		return fmt.Errorf("finding the requests of the subject of request %s: %w", requestID, err)
	}
	var forget []string
	kept := 0
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			rows.Close()
			return fmt.Errorf("finding the requests of the subject of request %s: %w", requestID, err)
		}
		if id != requestID && slices.Contains(workingStatuses, status) {
			kept++
			continue
		}
		forget = append(forget, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("finding the requests of the subject of request %s: %w", requestID, err)
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
		codes, err := tx.Exec(ctx, `DELETE FROM verification_codes WHERE request_id = ANY($1)`, forget)
		if err != nil {
			return fmt.Errorf("deleting verification codes: %w", err)
		}
		exports, err := dropExports(ctx, tx, tenant, forget)
		if err != nil {
			return fmt.Errorf("forgetting export packages: %w", err)
		}
		subjects, err := tx.Exec(ctx, `DELETE FROM request_subjects WHERE request_id = ANY($1)`, forget)
		if err != nil {
			return fmt.Errorf("forgetting the subject of request %s: %w", requestID, err)
		}
		return a.auditIn(ctx, tx, requestID+":forget", tenant, "lethe", "subject.forgotten", requestID, map[string]any{
			"requests": subjects.RowsAffected(), "verification_codes": codes.RowsAffected(),
			"export_packages": exports, "export_files": files, "kept_for_open_requests": kept,
		})
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
		if _, err := dropExports(ctx, tx, e.TenantID, []string{e.RequestID}); err != nil {
			return fmt.Errorf("recording the expiry of the export of request %s: %w", e.RequestID, err)
		}
		return a.auditIn(ctx, tx, e.RequestID+":export-expired", e.TenantID, "lethe", "request.export_expired", e.RequestID,
			map[string]any{"export_files": n})
	})
}

// dropExports records that the requests' export packages are gone, in the columns and in the
// recorded state, so that no page or answer offers a download that is no longer there.
func dropExports(ctx context.Context, tx pgx.Tx, tenant string, ids []string) (int64, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE requests SET export_uri = NULL, export_sha256 = NULL, export_bytes = NULL, state = state - 'export'
		WHERE id = ANY($1) AND tenant_id = $2 AND export_uri IS NOT NULL`, ids, tenant)
	return tag.RowsAffected(), err
}

// exportPrefix is where a request's files go: the connectors' files and the package.
func (a *Activities) exportPrefix(tenant, requestID string) string {
	return strings.TrimSuffix(a.ExportBase, "/") + "/" + tenant + "/" + requestID
}
