package breachreport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/internal/breachreport"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// Against the real register: each register state's report is kept once per format, every
// version stays downloadable through its own signed link, and each generation and download is
// in the audit trail with references only.
func TestReportVersionsKeptAndDownloadable(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	dir, err := exportstore.NewDir(t.TempDir())
	require.NoError(t, err)
	now := &clock{t: time.Date(2026, 3, 6, 22, 0, 0, 0, time.UTC)}
	svc := &breachreport.Service{Store: st, Exports: dir, Base: dir.URI(""), SigningKey: "0123456789abcdef0123456789abcdef",
		PublicURL: "https://lethe.example/", Now: now.Now}
	b := st.Breaches()

	aware := time.Date(2026, 3, 6, 16, 0, 0, 0, time.UTC)
	row := store.BreachRow{ID: "br-7", TenantID: "salon", Title: "Stolen laptop", Status: "open", AwareAt: aware,
		Facts: json.RawMessage(`{}`), State: json.RawMessage(`{}`), OpenedBy: "dpo", OpenedAt: aware.Add(time.Hour)}
	_, err = b.Open(ctx, st.Pool, row)
	require.NoError(t, err)
	require.NoError(t, b.AddContent(ctx, st.Pool, store.BreachContent{BreachID: "br-7", Version: 1,
		Art33: store.Art33{Nature: "Laptop stolen from a car"}, RecordedBy: "dpo", RecordedAt: aware.Add(time.Hour)}))
	row.UpdatedAt = aware.Add(time.Hour)
	require.NoError(t, b.Update(ctx, st.Pool, row))

	first, err := svc.Generate(ctx, "salon", "br-7", breachreport.FormatPDF, "dpo")
	require.NoError(t, err)
	assert.Equal(t, 1, first.Version)
	assert.Equal(t, 1, first.ContentVersion)
	again, err := svc.Generate(ctx, "salon", "br-7", breachreport.FormatPDF, "dpo")
	require.NoError(t, err)
	assert.Equal(t, first, again, "the same register state is one version")

	n := int64(1200)
	require.NoError(t, b.AddContent(ctx, st.Pool, store.BreachContent{BreachID: "br-7", Version: 2, Art33: store.Art33{
		Nature: "Laptop stolen from a car; the disk was not encrypted", SubjectCategories: []string{"customers"}, SubjectsApprox: &n,
		RecordCategories: []string{"bookings"}, RecordsApprox: &n, ContactPoint: "dpo@salon.example",
		Consequences: "Phishing", Measures: "Passwords reset"}, RecordedBy: "dpo", RecordedAt: aware.Add(20 * time.Hour)}))
	row.UpdatedAt = aware.Add(20 * time.Hour)
	require.NoError(t, b.Update(ctx, st.Pool, row))
	second, err := svc.Generate(ctx, "salon", "br-7", breachreport.FormatPDF, "dpo")
	require.NoError(t, err)
	assert.Equal(t, 2, second.Version)
	assert.Equal(t, 2, second.ContentVersion)
	html, err := svc.Generate(ctx, "salon", "br-7", breachreport.FormatHTML, "admin")
	require.NoError(t, err)
	assert.Equal(t, 3, html.Version)

	versions, err := svc.Versions(ctx, "salon", "br-7")
	require.NoError(t, err)
	require.Len(t, versions, 3)
	_, err = svc.Versions(ctx, "other-tenant", "br-7")
	assert.ErrorIs(t, err, breachreport.ErrNotFound, "another tenant's breach is not found")

	// Every version is downloadable, and is the document it was: version 1 still names what
	// was missing then.
	texts := map[int]string{}
	for _, v := range versions {
		d, err := svc.Link(ctx, "salon", "br-7", v.Version)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(d.URL, "https://lethe.example/v1/breaches/br-7/report?token="))
		u, err := url.Parse(d.URL)
		require.NoError(t, err)
		doc, got, err := svc.Open(ctx, "br-7", u.Query().Get("token"))
		require.NoError(t, err)
		assert.Equal(t, v, got)
		if v.Format == breachreport.FormatPDF {
			texts[v.Version] = pdfText(t, doc)
		} else {
			texts[v.Version] = string(doc)
		}
	}
	assert.Contains(t, texts[1], "Still missing (7 of 8)")
	assert.Contains(t, texts[1], "likely consequences (33(3)(c))")
	assert.Contains(t, texts[2], "Every Art. 33(3) element is given.")
	assert.Contains(t, texts[3], "Every Art. 33(3) element is given.")

	d, err := svc.Link(ctx, "salon", "br-7", 1)
	require.NoError(t, err)
	token, _ := url.Parse(d.URL)
	_, _, err = svc.Open(ctx, "br-8", token.Query().Get("token"))
	assert.ErrorIs(t, err, breachreport.ErrLinkInvalid, "a link works only at its own breach's URL")
	_, _, err = svc.Open(ctx, "br-7", token.Query().Get("token")+"x")
	assert.ErrorIs(t, err, breachreport.ErrLinkInvalid)
	_, err = svc.Link(ctx, "salon", "br-7", 9)
	assert.ErrorIs(t, err, breachreport.ErrNotFound)
	now.t = now.t.Add(breachreport.LinkTTL)
	_, _, err = svc.Open(ctx, "br-7", token.Query().Get("token"))
	assert.ErrorIs(t, err, breachreport.ErrLinkExpired)

	// A kept file that no longer matches its checksum is refused, not served.
	p, err := url.Parse(versions[0].URI)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p.Path, []byte("%PDF-1.3 tampered"), 0o600))
	_, _, err = svc.Read(ctx, "salon", "br-7", 1, "dpo", nil)
	assert.ErrorContains(t, err, "does not match its recorded checksum")

	events, err := st.Audit().List(ctx, store.AuditFilter{TenantID: "salon", Limit: 100})
	require.NoError(t, err)
	count := map[string]int{}
	for _, e := range events {
		count[e.Action]++
		if strings.HasPrefix(e.Action, "breach.report_") {
			assert.Equal(t, "br-7", e.BreachID)
			raw, _ := json.Marshal(e.Detail)
			assert.NotContains(t, string(raw), "Laptop", "the audit trail holds references, not the report's text")
			assert.Contains(t, e.Detail, "sha256")
		}
	}
	assert.Equal(t, 3, count["breach.report_generated"])
	assert.Equal(t, 3, count["breach.report_downloaded"])
}

// pdfText turns a PDF back into its text, as a reader copying it would get it, with
// whitespace folded so phrases can be searched across lines.
func pdfText(t *testing.T, doc []byte) string {
	t.Helper()
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	require.NoError(t, err)
	var b strings.Builder
	for i := 1; i <= r.NumPage(); i++ {
		rows, err := r.Page(i).GetTextByRow()
		require.NoError(t, err)
		for _, row := range rows {
			for _, w := range row.Content {
				b.WriteString(w.S + " ")
			}
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
