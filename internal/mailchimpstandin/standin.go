// Package mailchimpstandin is a local Mailchimp Marketing API v3 for tests and lethe dev,
// built from Mailchimp's API documentation. It serves exactly what Lethe's connector uses,
// plus adding a member (how lethe dev seeds it):
//
//   - GET /3.0/ping; GET /3.0/lists/{list_id}
//   - POST /3.0/lists/{list_id}/members; GET, PATCH and DELETE (archive)
//     /3.0/lists/{list_id}/members/{subscriber_hash}
//   - POST …/members/{subscriber_hash}/actions/delete-permanent
//   - GET and POST …/members/{subscriber_hash}/tags; GET …/members/{subscriber_hash}/activity-feed
//
// As Mailchimp does: HTTP Basic auth with the API key as password (any user name), and a key
// whose datacenter suffix is not the stand-in's is refused (401 "API Key Invalid"); every
// error is an application/problem+json document with type, title, status, detail and
// instance; a member is addressed by the MD5 of the lower-cased address (or the address
// itself); a permanently deleted member answers 404, and adding or renaming to their address
// is refused with 400 "Forgotten Email Not Subscribed"; archiving keeps the member with status
// archived, and a PATCH with a status unarchives them; more than 10 calls at once answer 429.
// Throttle makes the next calls answer 429 with a Retry-After header.
package mailchimpstandin

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Member is a list member as the stand-in holds and answers it.
type Member struct {
	ID                   string                `json:"id"`
	EmailAddress         string                `json:"email_address"`
	UniqueEmailID        string                `json:"unique_email_id"`
	FullName             string                `json:"full_name"`
	Status               string                `json:"status"`
	EmailType            string                `json:"email_type"`
	MergeFields          map[string]any        `json:"merge_fields"`
	MarketingPermissions []MarketingPermission `json:"marketing_permissions"`
	Language             string                `json:"language"`
	IPSignup             string                `json:"ip_signup"`
	TimestampSignup      string                `json:"timestamp_signup"`
	IPOpt                string                `json:"ip_opt"`
	TimestampOpt         string                `json:"timestamp_opt"`
	LastChanged          string                `json:"last_changed"`
	Source               string                `json:"source"`
	TagsCount            int                   `json:"tags_count"`
	Tags                 []Tag                 `json:"tags"`
	ListID               string                `json:"list_id"`
}

// MarketingPermission is one GDPR marketing permission of a member.
type MarketingPermission struct {
	ID      string `json:"marketing_permission_id"`
	Text    string `json:"text"`
	Enabled bool   `json:"enabled"`
}

// Tag is a member's tag.
type Tag struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	DateAdded string `json:"date_added"`
}

// Activity is one event of a member's activity feed.
type Activity struct {
	Type          string `json:"activity_type"`
	CreatedAt     string `json:"created_at_timestamp"`
	CampaignID    string `json:"campaign_id,omitempty"`
	CampaignTitle string `json:"campaign_title,omitempty"`
}

// Statuses a member may be added or patched with (archived and cleaned are set by Mailchimp).
var settable = []string{"subscribed", "unsubscribed", "pending", "transactional"}

// MaxConnections is Mailchimp's documented limit of simultaneous calls per key.
const MaxConnections = 10

// Server is the stand-in. Start it with New; URL is the API base to configure.
type Server struct {
	srv        *httptest.Server
	key        string
	datacenter string

	mu       sync.Mutex
	lists    map[string]*list
	tagSeq   int
	inFlight int
	throttle int
	after    time.Duration
	calls    map[string]int
}

type list struct {
	name      string
	members   map[string]*Member    // by subscriber hash
	activity  map[string][]Activity // by subscriber hash
	forgotten map[string]bool       // hashes deleted permanently
}

// New starts a stand-in that accepts key, whose suffix (…-us6) is its datacenter.
func New(key string) *Server {
	s := &Server{key: key, lists: map[string]*list{}, calls: map[string]int{}}
	if i := strings.LastIndex(key, "-"); i >= 0 {
		s.datacenter = key[i+1:]
	}
	mux := http.NewServeMux()
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /3.0/ping":                                                  s.ping,
		"GET /3.0/lists/{list}":                                          s.getList,
		"POST /3.0/lists/{list}/members":                                 s.addMember,
		"GET /3.0/lists/{list}/members/{hash}":                           s.getMember,
		"PATCH /3.0/lists/{list}/members/{hash}":                         s.patchMember,
		"DELETE /3.0/lists/{list}/members/{hash}":                        s.archive,
		"POST /3.0/lists/{list}/members/{hash}/actions/delete-permanent": s.deletePermanent,
		"GET /3.0/lists/{list}/members/{hash}/tags":                      s.getTags,
		"POST /3.0/lists/{list}/members/{hash}/tags":                     s.postTags,
		"GET /3.0/lists/{list}/members/{hash}/activity-feed":             s.activityFeed,
	} {
		mux.Handle(pattern, s.guard(pattern, h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "Resource Not Found", "The requested resource could not be found.")
	})
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the API base, as base_url takes it.
func (s *Server) URL() string { return s.srv.URL + "/3.0" }

// Close stops the stand-in; calls then fail to connect.
func (s *Server) Close() { s.srv.Close() }

// AddList creates an audience.
func (s *Server) AddList(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists[id] = &list{name: name, members: map[string]*Member{}, activity: map[string][]Activity{}, forgotten: map[string]bool{}}
}

// Put adds or replaces a member, as an import would (a forgotten address too: only the API
// refuses those). Tags are named in m.Tags; ids and dates are filled in.
func (s *Server) Put(listID string, m Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lists[listID]
	h := Hash(m.EmailAddress)
	s.fill(listID, h, &m)
	l.members[h] = &m
	delete(l.forgotten, h)
}

// AddActivity appends n events to a member's feed.
func (s *Server) AddActivity(listID, email string, events ...Activity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Hash(email)
	s.lists[listID].activity[h] = append(s.lists[listID].activity[h], events...)
}

// Member returns the member of listID at email, if the list holds one (archived included).
func (s *Server) Member(listID, email string) (Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lists[listID]
	if !ok {
		return Member{}, false
	}
	m, ok := l.members[Hash(email)]
	if !ok {
		return Member{}, false
	}
	return clone(m), true
}

// Forgotten reports whether email was deleted permanently from listID.
func (s *Server) Forgotten(listID, email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists[listID] != nil && s.lists[listID].forgotten[Hash(email)]
}

// Members counts the members of listID (archived included).
func (s *Server) Members(listID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.lists[listID]; l != nil {
		return len(l.members)
	}
	return 0
}

// Throttle makes the next n authenticated calls answer 429 with Retry-After: after.
func (s *Server) Throttle(n int, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.after = n, after
}

// Calls counts the calls answered for a route pattern, e.g.
// "POST /3.0/lists/{list}/members/{hash}/actions/delete-permanent".
func (s *Server) Calls(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[pattern]
}

// Hash is the subscriber hash of an address: the MD5 of its lower-cased form.
func Hash(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// guard authenticates, limits and counts a call.
func (s *Server) guard(pattern string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, key, ok := r.BasicAuth()
		if !ok || key != s.key || s.datacenter == "" {
			problem(w, http.StatusUnauthorized, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter.")
			return
		}
		s.mu.Lock()
		s.calls[pattern]++
		if s.throttle > 0 || s.inFlight >= MaxConnections {
			after := s.after
			if s.throttle > 0 {
				s.throttle--
			} else {
				after = time.Second
			}
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(int(after.Round(time.Second)/time.Second)))
			problem(w, http.StatusTooManyRequests, "Too Many Requests", fmt.Sprintf("You have exceeded the limit of %d simultaneous connections.", MaxConnections))
			return
		}
		s.inFlight++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
		h(w, r)
	})
}

func (s *Server) ping(w http.ResponseWriter, _ *http.Request) {
	answer(w, http.StatusOK, map[string]string{"health_status": "Everything's Chimpy!"})
}

func (s *Server) getList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	l, ok := s.lists[r.PathValue("list")]
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	answer(w, http.StatusOK, map[string]any{"id": r.PathValue("list"), "name": l.name, "stats": map[string]int{"member_count": len(l.members)}})
}

// memberBody is what POST and PATCH take.
type memberBody struct {
	EmailAddress *string        `json:"email_address"`
	Status       *string        `json:"status"`
	MergeFields  map[string]any `json:"merge_fields"`
	Tags         []string       `json:"tags"`
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) {
	var b memberBody
	if !decode(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lists[r.PathValue("list")]
	if !ok {
		notFound(w)
		return
	}
	if b.EmailAddress == nil || !strings.Contains(*b.EmailAddress, "@") || b.Status == nil || !slices.Contains(settable, *b.Status) {
		invalid(w)
		return
	}
	h := Hash(*b.EmailAddress)
	if !l.free(w, *b.EmailAddress) {
		return
	}
	m := &Member{EmailAddress: *b.EmailAddress, Status: *b.Status, MergeFields: b.MergeFields}
	for _, t := range b.Tags {
		m.Tags = append(m.Tags, Tag{Name: t})
	}
	s.fill(r.PathValue("list"), h, m)
	l.members[h] = m
	answer(w, http.StatusOK, m)
}

// member finds the member a path addresses; it answers 404 itself.
func (s *Server) member(w http.ResponseWriter, r *http.Request) (*list, string, *Member, bool) {
	l, ok := s.lists[r.PathValue("list")]
	if !ok {
		notFound(w)
		return nil, "", nil, false
	}
	h := r.PathValue("hash")
	if strings.Contains(h, "@") {
		h = Hash(h)
	}
	m, ok := l.members[strings.ToLower(h)]
	if !ok {
		notFound(w)
		return nil, "", nil, false
	}
	return l, strings.ToLower(h), m, true
}

// free reports whether email may become a member; if not it answers why: the address was
// deleted permanently, or is a member already.
func (l *list) free(w http.ResponseWriter, email string) bool {
	h := Hash(email)
	if l.forgotten[h] {
		problem(w, http.StatusBadRequest, "Forgotten Email Not Subscribed", email+" was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list.")
		return false
	}
	if _, ok := l.members[h]; ok {
		problem(w, http.StatusBadRequest, "Member Exists", email+" is already a list member. Use PUT to insert or update list members.")
		return false
	}
	return true
}

func (s *Server) getMember(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, m, ok := s.member(w, r); ok {
		answer(w, http.StatusOK, m)
	}
}

func (s *Server) patchMember(w http.ResponseWriter, r *http.Request) {
	var b memberBody
	if !decode(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, h, m, ok := s.member(w, r)
	if !ok {
		return
	}
	if b.Status != nil && !slices.Contains(settable, *b.Status) {
		invalid(w)
		return
	}
	if b.EmailAddress != nil && Hash(*b.EmailAddress) != h {
		nh := Hash(*b.EmailAddress)
		if !l.free(w, *b.EmailAddress) {
			return
		}
		delete(l.members, h)
		l.members[nh] = m
		l.activity[nh], l.activity[h] = l.activity[h], nil
		m.ID = nh
	}
	if b.EmailAddress != nil {
		m.EmailAddress = *b.EmailAddress
	}
	if b.Status != nil {
		if *b.Status == "unsubscribed" && m.Status != "unsubscribed" {
			l.activity[m.ID] = append(l.activity[m.ID], Activity{Type: "unsub", CreatedAt: now()})
		}
		m.Status = *b.Status
	}
	for k, v := range b.MergeFields {
		if m.MergeFields == nil {
			m.MergeFields = map[string]any{}
		}
		m.MergeFields[k] = v
	}
	m.FullName = fullName(m.MergeFields)
	m.LastChanged = now()
	answer(w, http.StatusOK, m)
}

func (s *Server) archive(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, m, ok := s.member(w, r); ok {
		m.Status, m.LastChanged = "archived", now()
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) deletePermanent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, h, _, ok := s.member(w, r); ok {
		delete(l.members, h)
		delete(l.activity, h)
		l.forgotten[h] = true
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) getTags(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, m, ok := s.member(w, r); ok {
		page(w, r, "tags", m.Tags)
	}
}

func (s *Server) postTags(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Tags []struct{ Name, Status string } `json:"tags"`
	}
	if !decode(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, m, ok := s.member(w, r)
	if !ok {
		return
	}
	for _, t := range b.Tags {
		if t.Name == "" || (t.Status != "active" && t.Status != "inactive") {
			invalid(w)
			return
		}
	}
	for _, t := range b.Tags {
		m.Tags = slices.DeleteFunc(m.Tags, func(x Tag) bool { return x.Name == t.Name })
		if t.Status == "active" {
			s.tagSeq++
			m.Tags = append(m.Tags, Tag{ID: s.tagSeq, Name: t.Name, DateAdded: now()})
		}
	}
	m.TagsCount = len(m.Tags)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) activityFeed(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, h, _, ok := s.member(w, r); ok {
		page(w, r, "activity", l.activity[h])
	}
}

// page answers one page of items under key, with count (default 10, at most 1,000) and
// offset as the API takes them, and total_items.
func page[T any](w http.ResponseWriter, r *http.Request, key string, items []T) {
	count, offset := 10, 0
	var err error
	if v := r.URL.Query().Get("count"); v != "" {
		if count, err = strconv.Atoi(v); err != nil || count < 1 || count > 1000 {
			problem(w, http.StatusBadRequest, "Invalid Resource", "count must be between 1 and 1000.")
			return
		}
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			problem(w, http.StatusBadRequest, "Invalid Resource", "offset must be a non-negative number.")
			return
		}
	}
	lo, hi := min(offset, len(items)), min(offset+count, len(items))
	answer(w, http.StatusOK, map[string]any{key: items[lo:hi], "total_items": len(items)})
}

// fill completes a member's generated fields.
func (s *Server) fill(listID, h string, m *Member) {
	m.ID, m.ListID, m.UniqueEmailID = h, listID, h[:10]
	if m.EmailType == "" {
		m.EmailType = "html"
	}
	if m.TimestampSignup == "" {
		m.TimestampSignup = now()
	}
	if m.LastChanged == "" {
		m.LastChanged = m.TimestampSignup
	}
	for i := range m.Tags {
		s.tagSeq++
		m.Tags[i].ID = s.tagSeq
		if m.Tags[i].DateAdded == "" {
			m.Tags[i].DateAdded = m.TimestampSignup
		}
	}
	m.TagsCount = len(m.Tags)
	m.FullName = fullName(m.MergeFields)
}

func fullName(merge map[string]any) string {
	first, _ := merge["FNAME"].(string)
	last, _ := merge["LNAME"].(string)
	return strings.TrimSpace(first + " " + last)
}

func clone(m *Member) Member {
	c := *m
	c.Tags = slices.Clone(m.Tags)
	c.MarketingPermissions = slices.Clone(m.MarketingPermissions)
	c.MergeFields = make(map[string]any, len(m.MergeFields))
	for k, v := range m.MergeFields {
		c.MergeFields[k] = v
	}
	return c
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		problem(w, http.StatusBadRequest, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")
		return false
	}
	return true
}

func invalid(w http.ResponseWriter) {
	problem(w, http.StatusBadRequest, "Invalid Resource", "The resource submitted could not be validated. For field-specific details, see the 'errors' array.")
}

func notFound(w http.ResponseWriter) {
	problem(w, http.StatusNotFound, "Resource Not Found", "The requested resource could not be found.")
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// problem answers Mailchimp's error document.
func problem(w http.ResponseWriter, status int, title, detail string) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title,
		"status": status, "detail": detail, "instance": hex.EncodeToString(id),
	})
}
