package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/links"
	"github.com/lethe-privacy/lethe/internal/store"
)

// GET /v1/breaches/{id}/report hands the DPO or an admin a signed link to the current report
// (one version per register state and format) or to any kept version; the link alone downloads
// the document, checked against its checksum, and each download is audited.
func (s *stack) testBreachReport(t *testing.T) {
	ctx := context.Background()
	aware := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	row := store.BreachRow{ID: "br-api-report", TenantID: "salon", Title: "Stolen laptop", Status: "open", AwareAt: aware,
		OpenedBy: "dpo", OpenedAt: aware, Facts: json.RawMessage(`{}`), State: json.RawMessage(`{}`)}
	_, err := s.Deps.Store.Breaches().Open(ctx, s.Deps.Store.Pool, row)
	require.NoError(t, err)
	base := "/v1/breaches/" + row.ID + "/report"

	assert.Equal(t, 403, s.call(t, "", "GET", base, tok("salon", "support"), nil).status, "support may not")
	assert.Equal(t, 404, s.call(t, "", "GET", base, tok("spa", "admin"), nil).status, "another tenant's breach")
	assert.Equal(t, 404, s.call(t, "", "GET", "/v1/breaches/br-none/report", tok("salon", "dpo"), nil).status)

	link := func(query, role string) map[string]any {
		t.Helper()
		r := s.call(t, "", "GET", base+query, tok("salon", role), nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		return r.json(t)
	}
	first := link("", "dpo")
	assert.EqualValues(t, 1, first["report"].(map[string]any)["version"])
	assert.Equal(t, "pdf", first["report"].(map[string]any)["format"])
	assert.EqualValues(t, 1, link("", "admin")["report"].(map[string]any)["version"], "the same register state is one version")
	html := link("?format=html", "dpo")
	assert.EqualValues(t, 2, html["report"].(map[string]any)["version"])
	again := link("?version=1", "dpo")
	assert.Len(t, again["versions"], 2)
	assert.Equal(t, 404, s.call(t, "", "GET", base+"?version=9", tok("salon", "dpo"), nil).status)

	for _, c := range []struct {
		got         map[string]any
		contentType string
		says        string
	}{{first, "application/pdf", "%PDF-"}, {html, "text/html", "Still missing (8 of 8)"}, {again, "application/pdf", "%PDF-"}} {
		u := c.got["url"].(string)
		require.True(t, strings.HasPrefix(u, s.URL+base+"?token="), u)
		r := s.call(t, "", "GET", strings.TrimPrefix(u, s.URL), "", nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), c.contentType))
		sum := sha256.Sum256(r.body)
		assert.Equal(t, c.got["report"].(map[string]any)["sha256"], hex.EncodeToString(sum[:]))
		assert.Equal(t, hex.EncodeToString(sum[:]), r.header.Get("X-Checksum-Sha256"))
		assert.Contains(t, string(r.body), c.says)
	}

	token, err := url.QueryUnescape(strings.TrimPrefix(first["url"].(string), s.URL+base+"?token="))
	require.NoError(t, err)
	export, _ := (links.Signer{Key: []byte(signingKey)}).Sign("salon", row.ID+"/1", time.Hour)
	for name, tk := range map[string]string{"tampered": token[:len(token)-2] + "xx", "an export link": export} {
		r := s.call(t, "", "GET", base+"?token="+url.QueryEscape(tk), "", nil)
		assert.Equal(t, 403, r.status, name)
		assert.Equal(t, "link_invalid", r.code(t), name)
	}
	r := s.call(t, "", "GET", base+"?token="+url.QueryEscape(export), tok("salon", "dpo"), nil)
	assert.Equal(t, 403, r.status, "a bad link is refused even beside a good bearer token")
	events := s.call(t, "", "GET", "/v1/audit?action=breach.report_downloaded&limit=100", tok("salon", "dpo"), nil).json(t)["events"].([]any)
	assert.Len(t, events, 3, "every download is audited")
	generated := s.call(t, "", "GET", "/v1/audit?action=breach.report_generated&limit=100", tok("salon", "dpo"), nil).json(t)["events"].([]any)
	assert.Len(t, generated, 2)
}
