package exportpkg

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/lethe-privacy/lethe/connectors"
)

// categoryLabels are the plain-language names the summary uses for each category.
var categoryLabels = map[connectors.Category]string{
	connectors.CategoryContact:   "Contact details",
	connectors.CategoryIdentity:  "Identity",
	connectors.CategoryFinancial: "Financial data",
	connectors.CategoryHealth:    "Health data",
	connectors.CategoryMarketing: "Marketing preferences",
}

func categoryLabel(c connectors.Category) string {
	if l, ok := categoryLabels[c]; ok {
		return l
	}
	return string(c)
}

// special reports whether c is a special category of personal data (GDPR Art. 9).
func special(c connectors.Category) bool { return c == connectors.CategoryHealth }

type summaryData struct {
	In         Input
	Generated  string
	Tables     []tableInfo
	Rows       int64
	Categories []connectors.Category
	Special    bool
}

func newSummaryData(in Input, tables []tableInfo) summaryData {
	d := summaryData{In: in, Generated: in.GeneratedAt.UTC().Format("2 January 2006, 15:04 UTC"), Tables: tables}
	seen := map[connectors.Category]bool{}
	for _, t := range tables {
		d.Rows += t.Rows
		for _, c := range t.Categories {
			if !seen[c] {
				seen[c] = true
				d.Categories = append(d.Categories, c)
			}
			d.Special = d.Special || special(c)
		}
	}
	return d
}

// The summary is one self-contained page: inline style only, and a Content-Security-Policy that
// stops a browser from loading anything, so opening it offline reveals nothing to anyone.
var summaryTmpl = template.Must(template.New("summary").Funcs(template.FuncMap{
	"label":   categoryLabel,
	"special": special,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your personal data held by {{.In.Notice.Controller.Name}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
.special{background:#fff3cd;border:1px solid #e0c36c;padding:.1rem .4rem;border-radius:.25rem;font-size:.9em}
.note{background:#f5f5f5;padding:.75rem 1rem;border-radius:.25rem}
code{font-size:.95em}
</style>
</head>
<body>
<h1>Your personal data held by {{.In.Notice.Controller.Name}}</h1>
<p>This package answers your request for access to your personal data (Art. 15 GDPR).
Reference <code>{{.In.RequestID}}</code>, prepared {{.Generated}}.</p>

<h2>What we hold about you</h2>
{{- if .Tables}}
<p>{{.Rows}} records in {{len .Tables}} tables. Each table is in this package as a JSON file and as a CSV file.</p>
<table>
<thead><tr><th>Source</th><th>Table</th><th>Records</th><th>Categories of personal data</th><th>Files</th></tr></thead>
<tbody>
{{- range .Tables}}
<tr><td>{{.Connector}}</td><td>{{.Table}}</td><td>{{.Rows}}</td><td>
{{- range $i, $c := .Categories}}{{if $i}}, {{end}}{{label $c}}{{if special $c}} <span class="special">special category (Art. 9 GDPR)</span>{{end}}{{else}}none{{end -}}
</td><td>{{range $i, $f := .Files}}{{if $i}}<br>{{end}}<code>{{$f}}</code>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>We found no personal data about you in our systems.</p>
{{- end}}
{{- if .Categories}}
<p>Categories of personal data we hold about you:
{{range $i, $c := .Categories}}{{if $i}}, {{end}}{{label $c}}{{end}}.</p>
{{- end}}
{{- if .Special}}
<p class="note"><strong>Health data</strong> is a special category of personal data (Art. 9 GDPR). We process it only with your explicit consent or where another condition of Art. 9(2) applies, and protect it with additional safeguards.</p>
{{- end}}

<h2>Why we use your data</h2>
<table>
<thead><tr><th>Purpose</th><th>Legal basis</th><th>Categories</th></tr></thead>
<tbody>
{{- range .In.Notice.Purposes}}
<tr><td>{{.Name}}</td><td>{{.LegalBasis}}</td><td>{{range $i, $c := .Categories}}{{if $i}}, {{end}}{{label $c}}{{end}}</td></tr>
{{- end}}
</tbody>
</table>

<h2>Who receives your data</h2>
{{- if .In.Notice.Recipients}}
<ul>{{range .In.Notice.Recipients}}<li>{{.}}</li>{{end}}</ul>
{{- else}}
<p>We do not disclose your data to anyone else.</p>
{{- end}}

<h2>How long we keep it</h2>
{{- with .In.Notice.Retention}}
{{- if .Categories}}
<ul>{{range .Categories}}<li>{{label .Category}}: {{.Period}}</li>{{end}}</ul>
{{- end}}
{{- if .Default}}
<p>{{if .Categories}}Everything else: {{end}}{{.Default}}</p>
{{- end}}
{{- end}}

<h2>Where the data came from</h2>
<p>{{with .In.Notice.Source}}{{.}}{{else}}We collected all of it from you.{{end}}</p>

<h2>Automated decisions</h2>
<p>{{with .In.Notice.AutomatedDecisions}}{{.}}{{else}}We do not make decisions about you based solely on automated processing, including profiling.{{end}}</p>

<h2>Transfers outside the European Economic Area</h2>
<p>{{with .In.Notice.TransfersSafeguards}}{{.}}{{else}}We do not transfer your data outside the European Economic Area.{{end}}</p>

<h2>Your rights</h2>
<p>You have the right to:</p>
<ul>{{range .In.Notice.Rights}}<li>{{.}}</li>{{end}}</ul>

<h2>Contact</h2>
<p>{{.In.Notice.Controller.Name}}: {{.In.Notice.Controller.Contact}}</p>
{{- with .In.Notice.DPOContact}}
<p>Data protection officer: {{.}}</p>
{{- end}}

<h2>About the files</h2>
<ul>
<li><code>&lt;source&gt;/&lt;table&gt;.json</code>: the records exactly as we hold them, as a JSON array of objects keyed by field name.</li>
<li><code>&lt;source&gt;/&lt;table&gt;.csv</code>: the same records for spreadsheets (UTF-8, comma-separated, first row is the field names). Text that begins with <code>=</code>, <code>+</code>, <code>-</code> or <code>@</code> starts with an extra <code>'</code> so a spreadsheet shows it rather than running it as a formula.</li>
<li><code>manifest.json</code>: every file with its SHA-256 checksum and record count, so you can check nothing is missing or altered.</li>
</ul>
</body>
</html>
`))

func writeSummary(w io.Writer, in Input, tables []tableInfo) error {
	return summaryTmpl.Execute(w, newSummaryData(in, tables))
}

// writeReadme explains a portability package. That package is for moving data to another
// service (Art. 20), so it stays machine-readable throughout: the Art. 15 page belongs to access
// requests, and a plain-text note is all a person or program needs to read the files.
func writeReadme(w io.Writer, in Input, tables []tableInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Your data, in a portable format (Art. 20 GDPR)\n\n")
	fmt.Fprintf(&b, "Reference: %s\nPrepared:  %s\n\n", in.RequestID, in.GeneratedAt.UTC().Format("2006-01-02T15:04:05Z"))
	b.WriteString("Each table is in two files:\n\n")
	b.WriteString("  <source>/<table>.json  the records exactly as held, a JSON array of objects\n")
	b.WriteString("                         keyed by field name (UTF-8)\n")
	b.WriteString("  <source>/<table>.csv   the same records as CSV (RFC 4180, UTF-8, first row\n")
	b.WriteString("                         is the field names); text beginning with = + - or @\n")
	b.WriteString("                         has an extra leading ' so spreadsheets do not run it\n")
	b.WriteString("                         as a formula; the JSON file has the exact value\n\n")
	b.WriteString("manifest.json lists every file with its SHA-256 checksum and record count.\n\n")
	if len(tables) == 0 {
		b.WriteString("No records were found.\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "Source\tTable\tRecords\n")
		for _, t := range tables {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", t.Connector, t.Table, t.Rows)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
