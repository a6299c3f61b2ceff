// Package schemas holds the JSON Schemas of every Kafka message Lethe reads or writes, and
// validates messages against them. The *.schema.json files in this directory are the contract;
// Go code embeds and compiles them, so there is no second, hand-written copy to drift.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Schema names, the value of every message's "schema" field.
const (
	RequestIntake    = "lethe.request.intake"
	BreachIntake     = "lethe.breach.intake"
	ConsentChange    = "lethe.consent.change"
	ConsentState     = "lethe.consent.state"
	ConnectorCommand = "lethe.connector.command"
	// ConnectorSealed is the plaintext of a command's sealed field, never a Kafka message.
	ConnectorSealed = "lethe.connector.sealed"
	ConnectorResult = "lethe.connector.result"
	Event           = "lethe.event"
	DLQ             = "lethe.dlq"
	// WebhookTask and WebhookAnswer are the webhook connector's HTTP messages, never on Kafka.
	WebhookTask   = "lethe.webhook.task"
	WebhookAnswer = "lethe.webhook.answer"
)

// Version is the version Lethe writes today. Readers accept every version a file here declares.
const Version = 1

// CommandVersion is the version of lethe.connector.command Lethe writes: 2 carries the subject
// and params sealed (connectors/envelope), never in clear.
const CommandVersion = 2

//go:embed *.json
var files embed.FS

// FS returns the embedded schema files, e.g. to serve them to integrators.
func FS() fs.FS { return files }

// baseURL prefixes each file's name to form its $id, so relative $refs between files resolve.
const baseURL = "https://github.com/lethe-privacy/lethe/schemas/"

// maxProblems bounds an error message: a DLQ reason should be read at a glance.
const maxProblems = 3

type key struct {
	name    string
	version int
}

type registry struct {
	schemas  map[key]*jsonschema.Schema
	versions map[string][]int
}

// load compiles every schema once; the result never changes afterwards.
var load = sync.OnceValues(compileAll)

func compileAll() (*registry, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()  // 2020-12 only annotates formats by default; we want email/date-time checked.
	c.AssertContent() // base64 task tokens and DLQ values are checked too.
	c.UseLoader(noLoader{})

	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	type message struct {
		file string
		key  key
	}
	var messages []message
	for _, file := range names {
		raw, err := files.ReadFile(file)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("reading schema %s: %w", file, err)
		}
		if err := c.AddResource(baseURL+file, doc); err != nil {
			return nil, fmt.Errorf("adding schema %s: %w", file, err)
		}
		if !strings.HasSuffix(file, ".schema.json") {
			continue // e.g. an OpenAPI document: not a message schema
		}
		// A file is a message schema when it pins "schema" and "version"; that pair is its key,
		// so adding version 2 of a message is adding one file.
		k, ok := messageKey(doc)
		if !ok {
			continue
		}
		messages = append(messages, message{file, k})
	}

	r := &registry{schemas: map[key]*jsonschema.Schema{}, versions: map[string][]int{}}
	for _, m := range messages {
		if _, dup := r.schemas[m.key]; dup {
			return nil, fmt.Errorf("schema %s v%d is declared twice (again in %s)", m.key.name, m.key.version, m.file)
		}
		sch, err := c.Compile(baseURL + m.file)
		if err != nil {
			return nil, fmt.Errorf("compiling schema %s: %w", m.file, err)
		}
		r.schemas[m.key] = sch
		r.versions[m.key.name] = append(r.versions[m.key.name], m.key.version)
	}
	for _, v := range r.versions {
		slices.Sort(v)
	}
	return r, nil
}

func messageKey(doc any) (key, bool) {
	obj, _ := doc.(map[string]any)
	props, _ := obj["properties"].(map[string]any)
	nameProp, _ := props["schema"].(map[string]any)
	versionProp, _ := props["version"].(map[string]any)
	name, ok := nameProp["const"].(string)
	if !ok {
		return key{}, false
	}
	n, ok := versionProp["const"].(json.Number)
	if !ok {
		return key{}, false
	}
	v, err := n.Int64()
	if err != nil {
		return key{}, false
	}
	return key{name, int(v)}, true
}

// noLoader refuses to fetch anything: every $ref must resolve to an embedded file.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not embedded in Lethe", url)
}

// Names lists the known schema names, sorted.
func Names() []string {
	r, err := load()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(r.versions))
	for n := range r.versions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate checks a message against the schema and version it names in its own "schema" and
// "version" fields, and returns that schema name. An unknown name or version is an error.
// Errors are *Error; their text is one short line fit for a DLQ reason.
func Validate(data []byte) (name string, err error) {
	inst, head, err := decode(data)
	if err != nil {
		return head.name, err
	}
	return head.name, validate(head, inst)
}

// ValidateAs checks a message that must be of the named schema, at whichever known version the
// message states. A message naming another schema fails.
func ValidateAs(name string, data []byte) error {
	r, err := load()
	if err != nil {
		return err
	}
	if _, ok := r.versions[name]; !ok {
		return fmt.Errorf("validating message: unknown schema %q", name)
	}
	inst, head, err := decode(data)
	if err != nil {
		if head.name == "" {
			if e, ok := err.(*Error); ok {
				e.Schema = name
			}
		}
		return err
	}
	if head.name != name {
		return &Error{Schema: name, Problems: []Problem{{Path: "/schema", Message: fmt.Sprintf("is %s, want %q", show(head.name), name)}}}
	}
	return validate(head, inst)
}

// header is what a message says about itself.
type header struct {
	name    string
	version int
}

func decode(data []byte) (any, header, error) {
	var h header
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, h, &Error{Problems: []Problem{{Message: "not valid JSON: " + jsonError(err)}}}
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return nil, h, &Error{Problems: []Problem{{Message: "not a JSON object"}}}
	}
	r, err := load()
	if err != nil {
		return nil, h, err
	}
	switch s := obj["schema"].(type) {
	case nil:
		return nil, h, &Error{Problems: []Problem{{Message: `missing property "schema"`}}}
	case string:
		if _, known := r.versions[s]; !known {
			return nil, h, &Error{Problems: []Problem{{Path: "/schema", Message: fmt.Sprintf("unknown schema %s (known: %s)", show(s), strings.Join(Names(), ", "))}}}
		}
		h.name = s
	default:
		return nil, h, &Error{Problems: []Problem{{Path: "/schema", Message: "must be a string"}}}
	}
	known := r.versions[h.name]
	switch v := obj["version"].(type) {
	case nil:
		return nil, h, &Error{Schema: h.name, Problems: []Problem{{Message: `missing property "version"`}}}
	case json.Number:
		n, err := v.Int64()
		if err != nil || !slices.Contains(known, int(n)) {
			return nil, h, &Error{Schema: h.name, Problems: []Problem{{Path: "/version", Message: fmt.Sprintf("unknown version %s (known: %s)", show(v), joinInts(known))}}}
		}
		h.version = int(n)
	default:
		return nil, h, &Error{Schema: h.name, Problems: []Problem{{Path: "/version", Message: "must be an integer"}}}
	}
	return inst, h, nil
}

func validate(h header, inst any) error {
	r, err := load()
	if err != nil {
		return err
	}
	err = r.schemas[key{h.name, h.version}].Validate(inst)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return fmt.Errorf("validating %s v%d: %w", h.name, h.version, err)
	}
	var ps []Problem
	flatten(ve, &ps)
	return &Error{Schema: h.name, Version: h.version, Problems: tidy(ps)}
}

// Error is a message that failed validation. Its text never contains the payload; values from
// the message appear only where they are codes (an unknown enum value, a schema name), because
// a DLQ reason gets logged and personal data must not be.
type Error struct {
	Schema   string // schema the message was checked against; "" when it named none we know
	Version  int    // 0 when the version was not established
	Problems []Problem
}

// Problem is one reason a message is invalid.
type Problem struct {
	Path    string // JSON pointer into the message, "" for the message itself
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Schema != "" && e.Version > 0:
		fmt.Fprintf(&b, "%s v%d: ", e.Schema, e.Version)
	case e.Schema != "":
		b.WriteString(e.Schema + ": ")
	}
	for i, p := range e.Problems {
		if i == maxProblems {
			fmt.Fprintf(&b, " (and %d more)", len(e.Problems)-maxProblems)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	if len(e.Problems) == 0 {
		b.WriteString("invalid")
	}
	return b.String()
}

// flatten walks the library's error tree down to the causes a sender can act on.
func flatten(e *jsonschema.ValidationError, out *[]Problem) {
	at := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		if props := requiredAlternatives(e); props != nil {
			*out = append(*out, Problem{at, "needs at least one of " + quoteAll(props)})
			return
		}
	case *kind.OneOf:
		if k.Subschemas != nil {
			// Two branches matched; the library keeps no causes to name them by.
			*out = append(*out, Problem{at, "matches more than one oneOf alternative; send exactly one"})
			return
		}
		if props := requiredAlternatives(e); props != nil {
			*out = append(*out, Problem{at, "needs exactly one of " + quoteAll(props)})
			return
		}
	}
	if len(e.Causes) == 0 {
		*out = append(*out, Problem{at, describe(e.ErrorKind)})
		return
	}
	for _, c := range e.Causes {
		flatten(c, out)
	}
}

// requiredAlternatives recognises anyOf/oneOf of plain "required" branches and returns the
// property names they ask for, or nil.
func requiredAlternatives(e *jsonschema.ValidationError) []string {
	if len(e.Causes) == 0 {
		return nil
	}
	var props []string
	for _, c := range e.Causes {
		for len(c.Causes) == 1 {
			c = c.Causes[0]
		}
		req, ok := c.ErrorKind.(*kind.Required)
		if !ok || len(c.Causes) != 0 {
			return nil
		}
		props = append(props, req.Missing...)
	}
	return props
}

func describe(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Required:
		if len(k.Missing) == 1 {
			return "missing property " + quoteAll(k.Missing)
		}
		return "missing properties " + quoteAll(k.Missing)
	case *kind.Type:
		return fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return fmt.Sprintf("%s is not one of %s", show(k.Got), strings.Join(want, ", "))
	case *kind.Const:
		return fmt.Sprintf("must be %s", show(k.Want))
	case *kind.Format:
		return "is not a valid " + k.Want
	case *kind.Pattern:
		return "does not match " + k.Want
	case *kind.MinLength:
		return fmt.Sprintf("is too short (at least %d characters)", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("is too long (%d characters, at most %d)", k.Got, k.Want)
	case *kind.Minimum:
		return "must be at least " + k.Want.RatString()
	case *kind.Maximum:
		return "must be at most " + k.Want.RatString()
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d %s", k.Want, plural(k.Want, "property", "properties"))
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d %s", k.Want, plural(k.Want, "item", "items"))
	case *kind.AdditionalProperties:
		// The library lists them in map order; sorted, the same message gives the same reason.
		return "unexpected " + plural(len(k.Properties), "property ", "properties ") + quoteAll(slices.Sorted(slices.Values(k.Properties)))
	case *kind.ContentEncoding:
		return "is not valid " + k.Want
	case *kind.FalseSchema:
		return "is not allowed"
	}
	// Other keywords are unused by Lethe's schemas; name the keyword rather than risk echoing
	// a value from the message.
	return fmt.Sprintf("fails %q", strings.Join(k.KeywordPath(), "/"))
}

// tidy orders problems by where they are, so the same message always gives the same reason.
func tidy(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Path != ps[j].Path {
			return ps[i].Path < ps[j].Path
		}
		return ps[i].Message < ps[j].Message
	})
	return slices.Compact(ps)
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		b.WriteString("/" + clip(t, 64))
	}
	return b.String()
}

// show renders a value from a message, clipped so a reason stays one short line.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", clip(v, 40))
	case json.Number:
		return clip(v.String(), 40)
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return clip(fmt.Sprint(v), 40)
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// jsonError keeps the decoder's reason but not the input it quotes.
func jsonError(err error) string {
	msg := err.Error()
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s (at byte %d)", clip(msg, 80), se.Offset)
	}
	return clip(msg, 80)
}
