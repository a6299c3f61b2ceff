package activities

import (
	"context"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/crypto"
	"github.com/lethe-privacy/lethe/internal/store"
)

// ErrConsentRefused is the application error type of a notify refused because the subject's
// current consent to the instance's consent_purpose is not granted. It is never retried: the
// ledger has to change first.
const ErrConsentRefused = "consent_not_granted"

// checkConsent lets a notify to an instance that declares a consent purpose go out only when
// the subject's current consent to it (store.ConsentOf over the ledger) is granted. A refusal is
// recorded in the audit trail, once per command however often the activity is retried, and no
// command reaches the connector: a marketing system never learns of a subject who said no.
func (a *Activities) checkConsent(ctx context.Context, d Dispatch, s connectors.Subject) error {
	purpose := a.ConsentPurposes[d.Connector]
	if d.Action != string(connectors.CapNotify) || purpose == "" {
		return nil
	}
	ref := crypto.SubjectHash(a.SigningKey, d.TenantID, s.Email, s.Phone, s.CustomerID)
	st, err := a.Store.Consent().State(ctx, d.TenantID, ref, purpose)
	if err != nil {
		return fmt.Errorf("checking consent before notifying through %s: %w", d.Connector, err)
	}
	if st.Granted {
		return nil
	}
	detail := map[string]any{"connector": d.Connector, "purpose": purpose, "state": "never_recorded"}
	if st.DecidedBy != "" {
		detail["state"], detail["decided_by"], detail["source"], detail["changed_at"] = "withdrawn", st.DecidedBy, st.Source, st.ChangedAt.UTC()
	}
	_, err = a.Store.Audit().Append(ctx, a.Store.Pool, store.Event{
		Key: d.IdempotencyKey + ":consent_refused", TenantID: d.TenantID, At: a.now(), Actor: "lethe",
		Action: "connector.notify_refused", RequestID: d.RequestID, SubjectRef: ref, Detail: detail,
	})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("notify through %s refused: the subject's consent to %s is %s", d.Connector, purpose, strings.ReplaceAll(detail["state"].(string), "_", " "))
	return temporal.NewNonRetryableApplicationError(msg, ErrConsentRefused, nil)
}
