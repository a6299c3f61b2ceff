package breachreport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/links"
	"github.com/lethe-privacy/lethe/internal/store"
)

// Errors callers map to user-facing answers.
var (
	ErrInvalid     = errors.New("invalid report request")
	ErrNotFound    = errors.New("breach or report not found")
	ErrLinkExpired = errors.New("report link has expired")
	ErrLinkInvalid = errors.New("report link is not valid")
)

// LinkTTL is how long a signed report link works.
const LinkTTL = 24 * time.Hour

// Service generates, keeps and serves breaches' authority reports. It is safe for concurrent
// use.
type Service struct {
	Store   *store.Store
	Exports exportstore.Store
	// Base is the export store URI prefix; reports are kept under Base/TENANT/BREACH/, beside
	// (never inside) any request's exports, since breach and request ids never coincide.
	Base string
	// SigningKey signs the download links; PublicURL is where they point.
	SigningKey string
	PublicURL  string
	Now        func() time.Time
}

// Download is a kept report with a signed link to it.
type Download struct {
	Report  store.BreachReport `json:"report"`
	URL     string             `json:"url"`
	Expires time.Time          `json:"expires_at"`
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Generate renders tenant's breach id's report in format from the register as it now stands
// and keeps it as a new version, unless that state's report in that format is kept already:
// then it returns that one. A new version is recorded with its audit event in one transaction.
func (s *Service) Generate(ctx context.Context, tenant, id, format, actor string) (store.BreachReport, error) {
	if !ValidFormat(format) {
		return store.BreachReport{}, fmt.Errorf("%w: format must be one of %s", ErrInvalid, strings.Join(Formats, ", "))
	}
	rec, err := s.Store.Breaches().Get(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.BreachReport{}, fmt.Errorf("%w: breach %s", ErrNotFound, id)
	}
	if err != nil {
		return store.BreachReport{}, err
	}
	doc, err := Render(rec, format)
	if err != nil {
		return store.BreachReport{}, err
	}
	sum := sha256.Sum256(doc)
	r := store.BreachReport{BreachID: id, Format: format, RegisterAt: rec.UpdatedAt.UTC(), SHA256: hex.EncodeToString(sum[:]),
		Bytes: int64(len(doc)), GeneratedBy: actor, GeneratedAt: s.now().UTC().Truncate(time.Microsecond)}
	if n := len(rec.Contents); n > 0 {
		r.ContentVersion = rec.Contents[n-1].Version
	}
	// Named by its checksum, so keeping the same report twice writes the same object.
	r.URI = strings.TrimSuffix(s.Base, "/") + "/" + rec.TenantID + "/" + id + "/report-" + r.SHA256[:16] + "." + format
	if err := s.keep(ctx, r, doc); err != nil {
		return store.BreachReport{}, err
	}
	err = pgx.BeginFunc(ctx, s.Store.Pool, func(tx pgx.Tx) error {
		var created bool
		if r, created, err = s.Store.Breaches().AddReport(ctx, tx, r); err != nil || !created {
			return err
		}
		_, err := s.Store.Audit().Append(ctx, tx, store.Event{Key: id + ":report:" + strconv.Itoa(r.Version), TenantID: rec.TenantID,
			At: r.GeneratedAt, Actor: actor, Action: "breach.report_generated", BreachID: id, Detail: detail(r)})
		return err
	})
	return r, err
}

func (s *Service) keep(ctx context.Context, r store.BreachReport, doc []byte) error {
	w, err := s.Exports.Create(ctx, r.URI)
	if err != nil {
		return fmt.Errorf("keeping the report of breach %s: %w", r.BreachID, err)
	}
	if _, err := w.Write(doc); err != nil {
		w.Abort()
		return fmt.Errorf("keeping the report of breach %s: %w", r.BreachID, err)
	}
	obj, err := w.Commit()
	if err != nil {
		return fmt.Errorf("keeping the report of breach %s: %w", r.BreachID, err)
	}
	if obj.SHA256 != r.SHA256 {
		return fmt.Errorf("keeping the report of breach %s: stored checksum %s differs from the document's", r.BreachID, obj.SHA256)
	}
	return nil
}

// Document returns a kept version of tenant's breach id's report for actor to read, recording
// the download; version 0 is the report of the register as it now stands in format, generated
// and kept first if need be.
func (s *Service) Document(ctx context.Context, tenant, id, format string, version int, actor string) ([]byte, store.BreachReport, error) {
	if version == 0 {
		r, err := s.Generate(ctx, tenant, id, format, actor)
		if err != nil {
			return nil, r, err
		}
		version = r.Version
	}
	return s.Read(ctx, tenant, id, version, actor, nil)
}

// Versions lists every kept report of tenant's breach id, oldest first.
func (s *Service) Versions(ctx context.Context, tenant, id string) ([]store.BreachReport, error) {
	if _, err := s.Store.Breaches().Get(ctx, tenant, id); errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: breach %s", ErrNotFound, id)
	} else if err != nil {
		return nil, err
	}
	return s.Store.Breaches().Reports(ctx, tenant, id)
}

// Link returns a signed, expiring link to a kept version of the report: public URL +
// /v1/breaches/{id}/report?token=...
func (s *Service) Link(ctx context.Context, tenant, id string, version int) (Download, error) {
	r, err := s.Store.Breaches().Report(ctx, tenant, id, version)
	if errors.Is(err, store.ErrNotFound) {
		return Download{}, fmt.Errorf("%w: breach %s has no report version %d", ErrNotFound, id, version)
	}
	if err != nil {
		return Download{}, err
	}
	if s.PublicURL == "" {
		return Download{}, errors.New("making a report link: http.public_url is not set")
	}
	signer, err := s.signer()
	if err != nil {
		return Download{}, err
	}
	token, expires := signer.Sign(tenant, id+"/"+strconv.Itoa(r.Version), LinkTTL)
	u := strings.TrimSuffix(s.PublicURL, "/") + "/v1/breaches/" + url.PathEscape(id) + "/report?token=" + url.QueryEscape(token)
	return Download{Report: r, URL: u, Expires: expires}, nil
}

// Open reads the report a signed link presented at breach id's URL points at, checks it
// against its recorded checksum and records the download in the audit trail.
func (s *Service) Open(ctx context.Context, id, token string) ([]byte, store.BreachReport, error) {
	signer, err := s.signer()
	if err != nil {
		return nil, store.BreachReport{}, err
	}
	l, err := signer.Verify(token)
	if errors.Is(err, links.ErrLinkExpired) {
		return nil, store.BreachReport{}, ErrLinkExpired
	}
	breach, v, ok := strings.Cut(l.RequestID, "/")
	version, verr := strconv.Atoi(v)
	if err != nil || !ok || verr != nil || breach != id {
		return nil, store.BreachReport{}, ErrLinkInvalid
	}
	doc, r, err := s.Read(ctx, l.TenantID, id, version, "staff (signed link)", map[string]any{"link_expires_at": l.Expires.UTC()})
	if errors.Is(err, ErrNotFound) {
		return nil, r, ErrLinkInvalid
	}
	return doc, r, err
}

// Read returns a kept version of tenant's breach id's report, checked against its recorded
// checksum, and records actor's download in the audit trail (with extra in its detail).
func (s *Service) Read(ctx context.Context, tenant, id string, version int, actor string, extra map[string]any) ([]byte, store.BreachReport, error) {
	r, err := s.Store.Breaches().Report(ctx, tenant, id, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, r, fmt.Errorf("%w: breach %s has no report version %d", ErrNotFound, id, version)
	}
	if err != nil {
		return nil, r, err
	}
	rc, err := s.Exports.Open(ctx, r.URI)
	if err != nil {
		return nil, r, fmt.Errorf("opening version %d of the report of breach %s: %w", version, id, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		return nil, r, fmt.Errorf("reading version %d of the report of breach %s: %w", version, id, err)
	}
	if sum := sha256.Sum256(buf.Bytes()); hex.EncodeToString(sum[:]) != r.SHA256 {
		return nil, r, fmt.Errorf("version %d of the report of breach %s does not match its recorded checksum", version, id)
	}
	d := detail(r)
	for k, v := range extra {
		d[k] = v
	}
	// Every download is its own event.
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	key := fmt.Sprintf("%s:report:%d:downloaded:%x", id, r.Version, nonce)
	if _, err := s.Store.Audit().Append(ctx, s.Store.Pool, store.Event{Key: key, TenantID: tenant, At: s.now(), Actor: actor,
		Action: "breach.report_downloaded", BreachID: id, Detail: d}); err != nil {
		return nil, r, err
	}
	return buf.Bytes(), r, nil
}

// detail is what the audit trail says of a report: references and numbers, never its text.
func detail(r store.BreachReport) map[string]any {
	return map[string]any{"version": r.Version, "format": r.Format, "content_version": r.ContentVersion,
		"sha256": r.SHA256, "bytes": r.Bytes}
}

func (s *Service) signer() (*links.Signer, error) {
	if s.SigningKey == "" {
		return nil, errors.New("report links need secrets.signing_key")
	}
	return &links.Signer{Key: []byte(s.SigningKey), Now: s.Now, Purpose: links.PurposeBreachReport}, nil
}
