package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/breachreport"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/retention"
	"github.com/lethe-privacy/lethe/schemas"
)

// DefaultMaxBody bounds a request body; every documented body is far smaller.
const DefaultMaxBody = 64 << 10

// V1Options configure the /v1 JSON API.
type V1Options struct {
	// Requests is the request service; its Cfg supplies tenants and their tokens.
	Requests *requests.Service
	// Breaches is the breach service; without it /v1/breaches answers 503.
	Breaches *breaches.Service
	// Reports serves breaches' authority reports; without it their route answers 503.
	Reports *breachreport.Service
	// Retention sets subjects' expiry dates; without it their route answers 503.
	Retention *retention.Service
	Log       *slog.Logger
	// MaxBody bounds request bodies in bytes (default DefaultMaxBody).
	MaxBody int64
}

// MountV1 serves the /v1 API on the server.
func (s *Server) MountV1(opt V1Options) error {
	if opt.Log == nil {
		opt.Log = s.log
	}
	return MountV1(s.mux, opt)
}

// MountV1 serves the /v1 API on mux.
func MountV1(mux *http.ServeMux, opt V1Options) error {
	h, err := NewV1(opt)
	if err != nil {
		return err
	}
	mux.Handle("/v1/", h)
	mux.Handle("/v1", h) // answered "no route" in JSON, not redirected
	return nil
}

// v1 routes, authenticates, limits and validates every call from schemas/openapi.yaml, then
// runs the operation's handler: the document is the only route table.
type v1 struct {
	svc      *requests.Service
	breaches *breaches.Service
	reports  *breachreport.Service
	// retention sets subjects' expiry dates.
	retention *retention.Service
	log       *slog.Logger
	router    routers.Router
	ops       map[string]operation
	methods   []string // every method the document uses, for Allow
	tokens    config.TokenTable
	maxBody   int64
}

type operation struct {
	roles  []string
	handle func(w http.ResponseWriter, r *http.Request, c *call)
}

// call is one authenticated, validated API call.
type call struct {
	tenant, role string
	// link is set when a signed export link, not a bearer token, admits the call.
	link   bool
	params map[string]string
	body   []byte
	// mediaType is the body's, one of those the operation takes (application/json unless the
	// document names others).
	mediaType string
}

// linkOperations are the downloads a signed link admits without a bearer token; for those
// marked true the link, once presented, is the credential even beside a bearer token, so a bad
// link is refused rather than passed over.
var linkOperations = map[string]bool{"getExport": false, "getBreachReport": true}

// NewV1 builds the /v1 handler. It fails when the OpenAPI document is invalid or names an
// operation Lethe does not serve, or the other way round.
func NewV1(opt V1Options) (http.Handler, error) {
	if opt.Requests == nil {
		return nil, errors.New("api: V1Options.Requests is required")
	}
	doc, err := LoadOpenAPI(context.Background())
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing the OpenAPI document: %w", err)
	}
	a := &v1{svc: opt.Requests, breaches: opt.Breaches, reports: opt.Reports, retention: opt.Retention, log: opt.Log, router: router, maxBody: opt.MaxBody}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBody
	}
	a.tokens = opt.Requests.Cfg.TokenTable()
	handlers := a.handlers()
	a.ops = map[string]operation{}
	for path, item := range doc.Paths.Map() {
		if !IsV1(path) {
			continue
		}
		for method, op := range item.Operations() {
			if !slices.Contains(a.methods, method) {
				a.methods = append(a.methods, method)
			}
			h, ok := handlers[op.OperationID]
			if !ok {
				return nil, fmt.Errorf("api: OpenAPI operation %s %s (%s) has no handler", method, op.OperationID, op.OperationID)
			}
			roles, err := rolesOf(op)
			if err != nil {
				return nil, fmt.Errorf("api: operation %s: %w", op.OperationID, err)
			}
			a.ops[op.OperationID] = operation{roles: roles, handle: h}
		}
	}
	slices.Sort(a.methods)
	for id := range handlers {
		if _, ok := a.ops[id]; !ok {
			return nil, fmt.Errorf("api: handler %s is not in the OpenAPI document", id)
		}
	}
	return a, nil
}

// The validator's own text/csv decoder refuses rows of differing lengths, which an upload of
// email[,phone[,name]] has; the document only says the body is text, and the handler checks the
// rows and names each bad one.
//
// The validator checks no "email" format unless one is defined. An empty address is refused
// here, since a handler reads it as none given; the handlers parse the rest exactly (422).
func init() {
	openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.PlainBodyDecoder)
	openapi3.DefineStringFormatValidator("email", openapi3.NewRegexpFormatValidator(`.`))
}

// LoadOpenAPI parses and validates schemas/openapi.yaml.
func LoadOpenAPI(ctx context.Context) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(schemas.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("loading schemas/openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("schemas/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

// rolesOf reads x-lethe-roles: the roles allowed to call the operation.
func rolesOf(op *openapi3.Operation) ([]string, error) {
	raw, ok := op.Extensions["x-lethe-roles"].([]any)
	if !ok || len(raw) == 0 {
		return nil, errors.New("x-lethe-roles must list the roles allowed")
	}
	var roles []string
	for _, r := range raw {
		s, _ := r.(string)
		if !slices.Contains(config.Roles, s) {
			return nil, fmt.Errorf("x-lethe-roles: %v is not one of %s", r, strings.Join(config.Roles, ", "))
		}
		roles = append(roles, s)
	}
	return roles, nil
}

func (a *v1) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("api handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, http.StatusInternalServerError, "internal", "Lethe failed to handle the request")
		}
	}()
	route, params, err := a.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		allow := a.allowed(r)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed here; allowed: "+strings.Join(allow, ", "))
		return
	case err != nil:
		writeError(w, http.StatusNotFound, "no_route", "no such API route")
		return
	}
	op := a.ops[route.Operation.OperationID]
	c := &call{params: params}

	linkFirst, byLink := linkOperations[route.Operation.OperationID]
	if byLink && r.URL.Query().Has("token") && (linkFirst || r.Header.Get("Authorization") == "") {
		c.link = true // the signed link is the credential; the operation's handler checks it
	} else {
		tenant, role, ok := a.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lethe"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		if !slices.Contains(op.roles, role) {
			writeError(w, http.StatusForbidden, "forbidden", "the "+role+" role may not do this; allowed: "+strings.Join(op.roles, ", "))
			return
		}
		c.tenant, c.role = tenant, role
	}

	hasBody := r.Body != nil && r.Body != http.NoBody
	switch {
	case hasBody && route.Operation.RequestBody == nil:
		// Only routes that take a body read one, so only they can answer 413.
		if n, _ := io.ReadFull(r.Body, make([]byte, 1)); n > 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "this route takes no body")
			return
		}
	case hasBody:
		limit := maxBodyOf(route.Operation, a.maxBody)
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the body is larger than %d bytes", limit))
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "the body could not be read")
			return
		}
		c.body = body
	}
	if len(c.body) > 0 {
		types := mediaTypes(route.Operation)
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || !slices.Contains(types, mt) {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be "+strings.Join(types, " or "))
			return
		}
		c.mediaType = mt
	}
	r.Body = io.NopCloser(bytes.NewReader(c.body))
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			// Authentication ran above; defaults are applied by the handlers.
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			SkipSettingDefaults: true,
		},
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		code, msg := describeInvalid(err)
		writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	if c.mediaType == "application/json" && holdsNUL(c.body) {
		// Valid JSON the schema cannot rule out (free-form params, changes): 422, not 400.
		writeError(w, http.StatusUnprocessableEntity, "invalid_text", "the body holds the character U+0000, which no text field may contain")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(c.body))
	op.handle(w, r, c)
}

// maxBodyOf is the operation's x-lethe-max-body (an upload's), else the API's limit.
func maxBodyOf(op *openapi3.Operation, def int64) int64 {
	if n, ok := op.Extensions["x-lethe-max-body"].(float64); ok && n > 0 {
		return int64(n)
	}
	return def
}

// mediaTypes are the body types an operation takes, application/json first.
func mediaTypes(op *openapi3.Operation) []string {
	types := []string{"application/json"}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		for _, t := range slices.Sorted(maps.Keys(op.RequestBody.Value.Content)) {
			if t != "application/json" {
				types = append(types, t)
			}
		}
	}
	return types
}

// allowed lists the methods the document serves on the request's path, for the Allow header
// a 405 must carry (RFC 9110, section 15.5.6).
func (a *v1) allowed(r *http.Request) []string {
	var out []string
	for _, m := range a.methods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, _, err := a.router.FindRoute(probe); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// authenticate finds the bearer token's tenant and role.
func (a *v1) authenticate(r *http.Request) (tenant, role string, ok bool) {
	scheme, presented, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", "", false
	}
	return a.tokens.Find(presented)
}

// IsV1 reports whether a path of the document is the /v1 API's; the others are vendors'
// webhooks (MountTwilio), served by handlers of their own and signed by the vendor.
func IsV1(path string) bool { return strings.HasPrefix(path, "/v1/") }

// OperationRoles maps each operation of schemas/openapi.yaml to the roles allowed to call it
// (x-lethe-roles): the dashboard shows an action only to the roles the API lets do it.
func OperationRoles(ctx context.Context) (map[string][]string, error) {
	doc, err := LoadOpenAPI(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for path, item := range doc.Paths.Map() {
		if !IsV1(path) {
			continue
		}
		for _, op := range item.Operations() {
			roles, err := rolesOf(op)
			if err != nil {
				return nil, fmt.Errorf("api: operation %s: %w", op.OperationID, err)
			}
			out[op.OperationID] = roles
		}
	}
	return out, nil
}

// describeInvalid turns a validation failure into a code and a message naming the parameter
// or body field and the rule, never the value sent.
func describeInvalid(err error) (code, msg string) {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return "invalid_request", "the request does not match the API description"
	}
	var se *openapi3.SchemaError
	reason := re.Reason
	if errors.As(re.Err, &se) {
		reason = se.Reason
		if p := se.JSONPointer(); len(p) > 0 {
			reason = "/" + strings.Join(p, "/") + ": " + reason
		}
	} else if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
		reason = "is required"
	}
	var pe *openapi3filter.ParseError
	switch {
	case re.Parameter != nil:
		return "invalid_request", fmt.Sprintf("%s parameter %s: %s", re.Parameter.In, re.Parameter.Name, reason)
	case re.RequestBody != nil && errors.As(re.Err, &pe) && se == nil:
		return "invalid_json", "the body is not valid JSON"
	case re.RequestBody != nil:
		return "invalid_request", "body " + reason
	}
	return "invalid_request", reason
}

// apiError is the body of every error answer.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

// holdsNUL reports whether a JSON body has U+0000 in any string or key, nested objects included
// (a finder's params, say): PostgreSQL stores it in neither text nor jsonb, so a workflow's write
// of it would fail on every retry.
func holdsNUL(body []byte) bool {
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return false // JSON can carry U+0000 only escaped
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.ContainsRune(v, 0)
		case []any:
			return slices.ContainsFunc(v, walk)
		case map[string]any:
			for k, e := range v {
				if strings.ContainsRune(k, 0) || walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// decode reads a validated body into v; an empty body leaves v as it is.
func decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
