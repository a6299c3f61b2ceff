package api

import (
	"cmp"
	"net/http"
	"strconv"
	"strings"

	"github.com/lethe-privacy/lethe/internal/breachreport"
)

// breachReport hands staff a signed link to a breach's report, generating the current one
// first, and serves the document to the link; every download goes through the link check and
// its audit event.
func (a *v1) breachReport(w http.ResponseWriter, r *http.Request, c *call) {
	if a.reports == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "breach reports are not served here")
		return
	}
	id, q := c.params["id"], r.URL.Query()
	if c.link {
		doc, rep, err := a.reports.Open(r.Context(), id, q.Get("token"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", breachreport.MediaType(rep.Format))
		h.Set("Content-Disposition", `attachment; filename="`+strings.Map(safeFileRune, "breach-"+id+"-report-v"+strconv.Itoa(rep.Version)+"."+rep.Format)+`"`)
		h.Set("X-Checksum-Sha256", rep.SHA256)
		h.Set("Referrer-Policy", "no-referrer") // the token is in the URL
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(doc)
		return
	}
	// The document validated both; a version is a positive 32-bit integer.
	version, _ := strconv.Atoi(q.Get("version"))
	if version == 0 {
		rep, err := a.reports.Generate(r.Context(), c.tenant, id, cmp.Or(q.Get("format"), breachreport.FormatPDF), a.actor(c, ""))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		version = rep.Version
	}
	d, err := a.reports.Link(r.Context(), c.tenant, id, version)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	versions, err := a.reports.Versions(r.Context(), c.tenant, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"report": d.Report, "url": d.URL, "expires_at": d.Expires.UTC(), "versions": versions})
}
