package requests

// Which of the subject's identifiers are proven. A verification proves only what its method
// checks: an emailed code the email address, a texted code the phone number, a host assertion the claims it signs, staff what
// they confirmed. Connector commands carry proven identifiers only (activities read the
// proofs), so a customer number typed next to one's own email finds nobody else's data.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// Identifier names, the JSON names of connectors.Subject's fields and the keys of the stored proofs.
const (
	IdentifierEmail      = "email"
	IdentifierPhone      = "phone"
	IdentifierCustomerID = "customer_id"
)

// Identifiers lists every identifier name.
var Identifiers = []string{IdentifierEmail, IdentifierPhone, IdentifierCustomerID}

// MethodStaff is the verification method of staff who checked identifiers themselves.
const MethodStaff = "staff"

// Proof says who proved one identifier, how and when.
type Proof struct {
	Method string    `json:"method"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
}

// Identifier is one of the subject's identifiers as staff see it: the value given and, once
// proven, its proof.
type Identifier struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Proof *Proof `json:"proof,omitempty"`
}

// given lists the names of the identifiers sub carries.
func given(sub connectors.Subject) []string {
	var out []string
	for _, n := range Identifiers {
		if value(sub, n) != "" {
			out = append(out, n)
		}
	}
	return out
}

func value(sub connectors.Subject, name string) string {
	switch name {
	case IdentifierEmail:
		return sub.Email
	case IdentifierPhone:
		return sub.Phone
	case IdentifierCustomerID:
		return sub.CustomerID
	}
	return ""
}

// proofsOf is the stored form of p for each of names.
func proofsOf(names []string, p Proof) map[string]Proof {
	out := map[string]Proof{}
	for _, n := range names {
		out[n] = p
	}
	return out
}

// prove records p for names of request id's subject, keeping the proofs of other identifiers.
func (s *Service) prove(ctx context.Context, tenant, id string, names []string, p Proof) error {
	raw, err := json.Marshal(proofsOf(names, p))
	if err != nil {
		return fmt.Errorf("encoding identifier proofs: %w", err)
	}
	err = s.Store.Subjects().AddProofs(ctx, tenant, id, raw)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: the subject of request %s is no longer known to Lethe", ErrRequestClosed, id)
	}
	return err
}

// SubjectIdentifiers returns the identifiers given for request id's subject, each with its
// proof if it has one, for staff to see and confirm. A forgotten subject has none.
func (s *Service) SubjectIdentifiers(ctx context.Context, tenant, id string) ([]Identifier, error) {
	if _, err := s.owned(ctx, tenant, id); err != nil {
		return nil, err
	}
	ids, raw, err := s.Store.Subjects().Given(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return []Identifier{}, nil
	}
	if err != nil {
		return nil, err
	}
	var proofs map[string]Proof
	if err := json.Unmarshal(raw, &proofs); err != nil {
		return nil, fmt.Errorf("decoding the identifier proofs of request %s: %w", id, err)
	}
	sub := connectors.Subject{Email: ids.Email, Phone: ids.Phone, CustomerID: ids.CustomerID}
	out := []Identifier{}
	for _, n := range given(sub) {
		ident := Identifier{Name: n, Value: value(sub, n)}
		if p, ok := proofs[n]; ok {
			ident.Proof = &p
		}
		out = append(out, ident)
	}
	return out, nil
}

// ViewSubjectIdentifiers is SubjectIdentifiers for staff (actor) to read: reading a subject's
// identifiers is recorded in the audit trail, with the subject's reference and which
// identifiers were shown, never their values.
func (s *Service) ViewSubjectIdentifiers(ctx context.Context, tenant, id, actor string) ([]Identifier, error) {
	ids, err := s.SubjectIdentifiers(ctx, tenant, id)
	if err != nil || len(ids) == 0 {
		return ids, err
	}
	var sub connectors.Subject
	names := make([]string, 0, len(ids))
	for _, i := range ids {
		names = append(names, i.Name)
		switch i.Name {
		case "email":
			sub.Email = i.Value
		case "phone":
			sub.Phone = i.Value
		case "customer_id":
			sub.CustomerID = i.Value
		}
	}
	if err := s.auditRef(ctx, tenant, id, actor, "request.subject_viewed", s.SubjectKey(tenant, sub), map[string]any{"identifiers": names}); err != nil {
		return nil, err
	}
	return ids, nil
}

// ConfirmIdentifiers records that staff (actor) checked the named identifiers belong to the
// person asking. A request still waiting for identity is verified by it (method staff); on a
// verified one the confirmed identifiers take part in the connector commands sent from now on
// (e.g. after a retry).
func (s *Service) ConfirmIdentifiers(ctx context.Context, tenant, id, actor string, names []string) (domain.RequestState, error) {
	actor = strings.TrimSpace(actor)
	if actor == "" {
		return domain.RequestState{}, fmt.Errorf("%w: the confirmation needs an actor", ErrInvalid)
	}
	if len(names) == 0 {
		return domain.RequestState{}, fmt.Errorf("%w: name the identifiers confirmed (%s)", ErrInvalid, strings.Join(Identifiers, ", "))
	}
	st, err := s.Get(ctx, tenant, id)
	if err != nil {
		return st, err
	}
	if domain.Terminal(st.Status) {
		return st, ErrRequestClosed
	}
	have, err := s.SubjectIdentifiers(ctx, tenant, id)
	if err != nil {
		return st, err
	}
	for _, n := range names {
		if !slices.ContainsFunc(have, func(i Identifier) bool { return i.Name == n }) {
			return st, fmt.Errorf("%w: the request has no %s to confirm (given: %s)", ErrInvalid, n, strings.Join(identifierNames(have), ", "))
		}
	}
	if err := s.prove(ctx, tenant, id, names, Proof{Method: MethodStaff, Actor: actor, At: s.now().UTC()}); err != nil {
		return st, err
	}
	if err := s.audit(ctx, tenant, id, actor, "subject.identifiers_confirmed", map[string]any{"identifiers": names}); err != nil {
		return st, err
	}
	if awaitingIdentity(st) == nil {
		return s.Decide(ctx, tenant, id, workflows.UpdateVerifyIdentity, workflows.Verification{Method: MethodStaff, Actor: actor})
	}
	return s.Get(ctx, tenant, id)
}

func identifierNames(ids []Identifier) []string {
	out := make([]string, 0, len(ids))
	for _, i := range ids {
		out = append(out, i.Name)
	}
	return out
}
