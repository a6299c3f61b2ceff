package breaches

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/workflows"
)

// Subjects starts notifying the people affected by a high-risk breach (Art. 34): those the
// tenant's connectors find with Find, or those listed in CSV.
type Subjects struct {
	Find []workflows.SubjectFind
	// CSV is an upload of email[,phone[,name]] rows, with or without that header line.
	CSV io.Reader
	// Resume starts a run for the people earlier runs left unsent (a run failed or was
	// cancelled), with nobody new.
	Resume bool
	Actor  string
}

// BadRow is an upload's row that was refused: its line and why, never its values.
type BadRow struct {
	Line    int    `json:"line"`
	Problem string `json:"problem"`
}

// UploadError refuses an upload with bad rows. Nothing of it was listed: fix the rows and
// upload the whole file again.
type UploadError struct{ Rows []BadRow }

func (e *UploadError) Error() string {
	var lines []string
	for i, r := range e.Rows {
		if i == 10 {
			lines = append(lines, fmt.Sprintf("and %d more", len(e.Rows)-10))
			break
		}
		lines = append(lines, fmt.Sprintf("line %d: %s", r.Line, r.Problem))
	}
	return fmt.Sprintf("%v: the upload has %d bad rows and nothing of it was listed: %s", ErrInvalid, len(e.Rows), strings.Join(lines, "; "))
}

func (e *UploadError) Unwrap() error { return ErrInvalid }

// Notify starts a notice run for tenant's breach id and returns the breach as it then stands.
// An upload is checked whole before anything is listed; the people it lists stay in PostgreSQL
// only (never in the workflow's history), one per address however often they appear.
func (s *Service) Notify(ctx context.Context, tenant, id string, n Subjects) (workflows.BreachState, error) {
	st, err := s.Get(ctx, tenant, id)
	if err != nil {
		return st, err
	}
	// Checked before the upload is listed, so a refused run leaves nobody waiting.
	if st.Risk != "high" {
		return st, fmt.Errorf("%w: the people affected are notified when the risk to them is high (Art. 34); assess the breach high first", ErrRejected)
	}
	arg := workflows.BreachSubjects{Find: n.Find, Resume: n.Resume, Actor: n.Actor, Connectors: requests.ConnectorRefs(s.Cfg, tenant), ExportBase: s.ExportBase,
		Retention: s.Cfg.Mail.NoticeRetention}
	if n.CSV != nil {
		if len(n.Find) > 0 {
			return st, fmt.Errorf("%w: give finders or an upload, not both", ErrInvalid)
		}
		t, _ := s.Cfg.Tenant(tenant)
		rs, err := ReadCSV(n.CSV, t.SMS != "")
		if err != nil {
			return st, err
		}
		for _, r := range st.Notices {
			if r.Status == workflows.NoticeRunning {
				return st, fmt.Errorf("%w: notice run %d is still sending; upload once it is done", ErrRejected, r.Run)
			}
		}
		if arg.Uploaded, err = s.Store.Notices().AddRecipients(ctx, s.Cfg.Secrets.SigningKey.Value(), id, "upload", rs); err != nil {
			return st, err
		}
		if arg.Uploaded == 0 {
			return st, fmt.Errorf("%w: everyone in the upload was already notified or listed", ErrRejected)
		}
	}
	return s.Update(ctx, tenant, id, workflows.UpdateBreachSubjects, arg)
}

// ReadCSV reads an upload of email[,phone[,name]] rows. With texts (the tenant sends texts,
// tenants[].sms), a row may leave the email empty and give a phone with its country code: that
// person is told by text. Every bad row is reported by line.
func ReadCSV(r io.Reader, texts bool) ([]store.Recipient, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var out []store.Recipient
	var bad []BadRow
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// Malformed quoting: the reader cannot go on reliably past it.
			bad = append(bad, BadRow{Line: pe.Line, Problem: "malformed CSV: " + pe.Err.Error()})
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the upload: %w", err)
		}
		if line == 1 && strings.EqualFold(strings.TrimSpace(rec[0]), "email") {
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if p := problem(rec, texts); p != "" {
			bad = append(bad, BadRow{Line: line, Problem: p})
			continue
		}
		x := store.Recipient{Email: strings.TrimSpace(rec[0])}
		if len(rec) > 1 {
			x.Phone = strings.TrimSpace(rec[1])
		}
		if x.Email == "" {
			x.Phone, _ = domain.E164(x.Phone) // checked by problem
		}
		if len(rec) > 2 {
			x.Name = strings.TrimSpace(rec[2])
		}
		out = append(out, x)
	}
	if len(bad) > 0 {
		return nil, &UploadError{Rows: bad}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the upload lists nobody (want rows of email[,phone[,name]])", ErrInvalid)
	}
	return out, nil
}

func problem(rec []string, texts bool) string {
	email, phone := strings.TrimSpace(rec[0]), ""
	if len(rec) > 1 {
		phone = strings.TrimSpace(rec[1])
	}
	_, e164 := domain.E164(phone)
	switch {
	case len(rec) > 3:
		return fmt.Sprintf("%d fields, want email[,phone[,name]]", len(rec))
	case email == "" && !texts:
		return "the email is empty, and the tenant sends no texts to reach a phone (set tenants[].sms)"
	case email == "" && phone == "":
		return "the email and the phone are empty"
	case email == "" && !e164:
		return "the email is empty and the phone is not in international form (+ and the country code, e.g. +49 30 1234567)"
	case email != "" && !mail.ValidAddress(email):
		return "the email is not an email address"
	case strings.Trim(phone, "+0123456789 ()-./") != "":
		return "the phone holds characters other than digits, spaces and + ( ) - . /"
	case len(rec) > 2 && len(rec[2]) > 200:
		return "the name is longer than 200 characters"
	}
	return ""
}
