package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"unicode/utf8"
)

// Templates live under templates/<language>/: layout.html and layout.txt wrap a kind's
// <kind>.html and <kind>.txt (each defining "body"); subjects.txt defines one subject per kind
// and the request type labels ("type:access", ...). A language that lacks a kind's files falls
// back to English for that whole message, so one message never mixes languages.
//
//go:embed templates
var templateFS embed.FS

// DefaultLanguage is used when a notice's language has no templates.
const DefaultLanguage = "en"

// Rendered is a notice ready to send.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

type langSet struct {
	subjects *texttemplate.Template
	html     map[Kind]*htmltemplate.Template
	text     map[Kind]*texttemplate.Template
}

// catalog is parsed once; the templates are read-only afterwards and safe for concurrent use.
var catalog = sync.OnceValues(func() (map[string]*langSet, error) { return loadCatalog(templateFS) })

func loadCatalog(fsys fs.FS) (map[string]*langSet, error) {
	dirs, err := fs.ReadDir(fsys, "templates")
	if err != nil {
		return nil, fmt.Errorf("reading mail templates: %w", err)
	}
	out := map[string]*langSet{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		lang := d.Name()
		dir := "templates/" + lang + "/"
		ls := &langSet{html: map[Kind]*htmltemplate.Template{}, text: map[Kind]*texttemplate.Template{}}
		if ls.subjects, err = texttemplate.ParseFS(fsys, dir+"subjects.txt"); err != nil {
			return nil, fmt.Errorf("parsing %s mail subjects: %w", lang, err)
		}
		for _, k := range Kinds() {
			if !exists(fsys, dir+string(k)+".html") || !exists(fsys, dir+string(k)+".txt") || ls.subjects.Lookup(string(k)) == nil {
				continue
			}
			h, err := htmltemplate.ParseFS(fsys, dir+"layout.html", dir+string(k)+".html")
			if err != nil {
				return nil, fmt.Errorf("parsing %s %s mail template: %w", lang, k, err)
			}
			t, err := texttemplate.ParseFS(fsys, dir+"layout.txt", dir+string(k)+".txt")
			if err != nil {
				return nil, fmt.Errorf("parsing %s %s mail template: %w", lang, k, err)
			}
			ls.html[k], ls.text[k] = h.Option("missingkey=zero"), t.Option("missingkey=zero")
		}
		out[lang] = ls
	}
	en, ok := out[DefaultLanguage]
	if !ok {
		return nil, fmt.Errorf("mail templates: no %q templates", DefaultLanguage)
	}
	for _, k := range Kinds() {
		if en.html[k] == nil {
			return nil, fmt.Errorf("mail templates: %q has no %s templates", DefaultLanguage, k)
		}
	}
	return out, nil
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// pick returns the templates for a language tag ("de-AT" tries de-at, then de), else English.
func pick(c map[string]*langSet, tag string, k Kind) (string, *langSet) {
	tag = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	for _, l := range []string{tag, strings.SplitN(tag, "-", 2)[0]} {
		if ls, ok := c[l]; ok && ls.html[k] != nil {
			return l, ls
		}
	}
	return DefaultLanguage, c[DefaultLanguage]
}

// subjectView is everything a subject line may show. Keeping it to these fields is what keeps
// personal data out of subjects.
type subjectView struct {
	Tenant, RequestID, BreachID, Type, DueDate, DueAt, NewDueDate string
}

type bodyView struct {
	Lang    string
	Subject string
	Kind    Kind
	Staff   bool // to the tenant's own people: no subject-facing footer
	Tenant  brand
	Type    string // readable request type, e.g. "data portability"
	D       data
}

var blankLines = regexp.MustCompile(`\n{3,}`)

// Render builds the subject line and the text and HTML bodies of a notice. It fails, naming the
// field, when the notice lacks what its kind needs.
func Render(n Notice) (Rendered, error) {
	c, err := catalog()
	if err != nil {
		return Rendered{}, err
	}
	return render(c, n)
}

func render(c map[string]*langSet, n Notice) (Rendered, error) { return renderAs(c, n, false) }

// renderAs renders n; short, only its subject line, text body and the tenant's name.
func renderAs(c map[string]*langSet, n Notice, short bool) (Rendered, error) {
	d, err := normalize(n)
	if err != nil {
		return Rendered{}, err
	}
	lang, ls := pick(c, n.Language, n.Kind)

	var typ string
	if t, ok := d["RequestType"].(string); ok {
		var b bytes.Buffer
		if err := ls.subjects.ExecuteTemplate(&b, "type:"+t, nil); err != nil {
			return Rendered{}, fmt.Errorf("rendering %s request type label: %w", lang, err)
		}
		typ = b.String()
	}
	sv := subjectView{Tenant: makeBrand(n.Tenant).Name, Type: typ}
	sv.RequestID, _ = d["RequestID"].(string)
	sv.DueDate, _ = d["DueDate"].(string)
	sv.BreachID, _ = d["BreachID"].(string)
	sv.DueAt, _ = d["DueAt"].(string)
	sv.NewDueDate, _ = d["NewDueDate"].(string)
	var sb bytes.Buffer
	if err := ls.subjects.ExecuteTemplate(&sb, string(n.Kind), sv); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s subject: %w", n.Kind, err)
	}
	// A subject is a single header line whatever the tenant's name contains.
	subject := strings.Join(strings.Fields(sb.String()), " ")

	v := bodyView{Lang: lang, Subject: subject, Kind: n.Kind, Staff: n.Kind.Staff(), Tenant: makeBrand(n.Tenant), Type: typ, D: d}
	if short {
		var tb bytes.Buffer
		if err := ls.text[n.Kind].ExecuteTemplate(&tb, "body", v); err != nil {
			return Rendered{}, fmt.Errorf("rendering %s text body: %w", n.Kind, err)
		}
		text := blankLines.ReplaceAllString(strings.TrimSpace(tb.String()), "\n\n")
		return Rendered{Subject: subject, Text: subject + "\n\n" + text + "\n-- " + v.Tenant.Name}, nil
	}
	var tb, hb bytes.Buffer
	if err := ls.text[n.Kind].ExecuteTemplate(&tb, "layout.txt", v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s text body: %w", n.Kind, err)
	}
	if err := ls.html[n.Kind].ExecuteTemplate(&hb, "layout.html", v); err != nil {
		return Rendered{}, fmt.Errorf("rendering %s HTML body: %w", n.Kind, err)
	}
	text := blankLines.ReplaceAllString(strings.TrimSpace(tb.String()), "\n\n") + "\n"
	return Rendered{Subject: subject, Text: text, HTML: hb.String()}, nil
}

// RenderShort is a notice as one text message of at most limit characters: its subject line,
// the text body's own wording (without the greeting and footer) and the tenant's name. While it
// is longer, lists (e.g. recommendations) are left out, then the longest free-text field not in
// keep is shortened, ending in "…". It is the same for the same notice, so a sender can look
// for an earlier copy by its body.
func RenderShort(n Notice, limit int, keep ...string) (string, error) {
	c, err := catalog()
	if err != nil {
		return "", err
	}
	n.Data = maps.Clone(n.Data)
	for {
		r, err := renderAs(c, n, true)
		if err != nil {
			return "", err
		}
		over := utf8.RuneCountInString(r.Text) - limit
		if over <= 0 {
			return r.Text, nil
		}
		if !shorten(n.Data, over, keep) {
			return "", fmt.Errorf("mail: %s notice: its kept fields alone are longer than %d characters", n.Kind, limit)
		}
	}
}

// shorten drops a list from d, else cuts the longest text not in keep by over characters (and
// one for the ellipsis); false when nothing is left to cut.
func shorten(d map[string]any, over int, keep []string) bool {
	for _, k := range slices.Sorted(maps.Keys(d)) {
		if _, text := d[k].(string); !text && d[k] != nil {
			delete(d, k)
			return true
		}
	}
	longest, size := "", 0
	for _, k := range slices.Sorted(maps.Keys(d)) {
		s, ok := d[k].(string)
		if n := utf8.RuneCountInString(s); ok && !slices.Contains(keep, k) && n > size {
			longest, size = k, n
		}
	}
	if size == 0 {
		return false
	}
	rs := []rune(strings.TrimSuffix(d[longest].(string), "…"))
	cut := strings.TrimSpace(string(rs[:max(len(rs)-over-1, 1)])) + "…"
	if cut == d[longest] {
		return false // as short as it gets
	}
	d[longest] = cut
	return true
}
