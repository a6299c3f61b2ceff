package mail

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// A language directory is used for the kinds it has; for the rest the whole message is English.
func TestLanguageDirectoriesAndPerKindFallback(t *testing.T) {
	fsys := fstest.MapFS{}
	err := fs.WalkDir(templateFS, "templates/en", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		fsys[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	de := map[string]string{
		"subjects.txt":    `{{define "completion"}}Ihre Anfrage {{.RequestID}} bei {{.Tenant}} ist erledigt{{end}}{{define "type:erasure"}}Löschung{{end}}`,
		"layout.txt":      "Guten Tag,\n\n{{template \"body\" .}}\n",
		"layout.html":     `<html lang="{{.Lang}}"><body>{{template "body" .}}</body></html>`,
		"completion.txt":  `{{define "body"}}Ihre {{.Type}}-Anfrage {{.D.RequestID}} ist erledigt.{{end}}`,
		"completion.html": `{{define "body"}}<p>Ihre {{.Type}}-Anfrage {{.D.RequestID}} ist erledigt.</p>{{end}}`,
	}
	for name, text := range de {
		fsys["templates/de/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	c, err := loadCatalog(fsys)
	if err != nil {
		t.Fatal(err)
	}
	n := Notice{Kind: KindCompletion, Language: "de-AT", Tenant: Branding{Name: "Salon Beispiel"},
		Data: map[string]any{"RequestID": "R-1", "RequestType": "erasure"}}
	r, err := render(c, n)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Ihre Anfrage R-1 bei Salon Beispiel ist erledigt" || !strings.Contains(r.Text, "Ihre Löschung-Anfrage R-1") || !strings.Contains(r.HTML, `<html lang="de">`) {
		t.Errorf("German completion not used: %+v", r)
	}
	n.Kind, n.Data["DueDate"] = KindAcknowledgement, "2026-12-28"
	r, err = render(c, n)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Your erasure request R-1 at Salon Beispiel: due by 2026-12-28" || !strings.Contains(r.HTML, `<html lang="en">`) {
		t.Errorf("acknowledgement without German templates is not wholly English: %q", r.Subject)
	}

	delete(fsys, "templates/en/denial.html")
	if _, err := loadCatalog(fsys); err == nil || !strings.Contains(err.Error(), "denial") {
		t.Errorf("missing English template: err = %v", err)
	}
}
