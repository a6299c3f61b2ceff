package bench

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/lethe-privacy/lethe/internal/mail"
)

// mailTap sits in front of Mailgun's stand-in: it counts the messages Lethe sends and hands
// each verification code to the subject waiting for it, as a subject reading their mail would.
type mailTap struct {
	srv   *http.Server
	addr  string
	sent  atomic.Int64
	mu    sync.Mutex
	codes map[string]chan string // by request ID
}

// codeText finds the code in the verification_code notice's text part.
var codeText = regexp.MustCompile(`confirm that you made request \S+ to [^\n]*:\s+(\S+)`)

func newMailTap(standin string) (*mailTap, error) {
	target, err := url.Parse(standin)
	if err != nil {
		return nil, err
	}
	target.Path = ""
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &mailTap{addr: l.Addr().String(), codes: map[string]chan string{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	t.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			raw, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "reading the message", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(raw))
			if r.ParseMultipartForm(8<<20) == nil || r.ParseForm() == nil {
				t.sent.Add(1)
				if m := codeText.FindStringSubmatch(r.FormValue("text")); m != nil {
					t.deliver(r.FormValue("v:"+mail.RequestIDVariable), m[1])
				}
			}
			r.Body, r.Form, r.PostForm, r.MultipartForm = io.NopCloser(bytes.NewReader(raw)), nil, nil, nil
			r.ContentLength = int64(len(raw))
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = t.srv.Serve(l) }()
	return t, nil
}

func (t *mailTap) url() string { return "http://" + t.addr + "/v3" }

func (t *mailTap) close() { _ = t.srv.Close() }

// expect returns the channel the code of request id will arrive on.
func (t *mailTap) expect(id string) <-chan string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := make(chan string, 1)
	t.codes[id] = c
	return c
}

func (t *mailTap) deliver(id, code string) {
	t.mu.Lock()
	c, ok := t.codes[id]
	delete(t.codes, id)
	t.mu.Unlock()
	if ok {
		c <- code
	}
}
