package app_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/exports"
)

func TestHTTPServerSetsEveryTimeout(t *testing.T) {
	srv := app.NewHTTPServer(http.NotFoundHandler(), app.HTTPTimeouts())
	for name, d := range map[string]time.Duration{
		"read header": srv.ReadHeaderTimeout, "read": srv.ReadTimeout, "write": srv.WriteTimeout, "idle": srv.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s timeout is not set", name)
		}
	}
}

// trickle yields n chunks, each after a pause: a download on a slow link.
type trickle struct {
	n     int
	pause time.Duration
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	r.n--
	time.Sleep(r.pause)
	return copy(p, strings.Repeat("x", 1024)), nil
}

// A download that keeps moving outlives the server's write timeout; a plain copy does not.
func TestDownloadOutlivesWriteTimeout(t *testing.T) {
	limits := app.Timeouts{ReadHeader: time.Second, Read: time.Second, Write: 300 * time.Millisecond, Idle: time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/send", func(w http.ResponseWriter, _ *http.Request) {
		_ = exports.Send(w, &trickle{n: 8, pause: 100 * time.Millisecond}, 300*time.Millisecond)
	})
	mux.HandleFunc("/copy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.Copy(w, &trickle{n: 8, pause: 100 * time.Millisecond})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := app.NewHTTPServer(mux, limits)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	get := func(path string) (int, error) {
		res, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return len(b), err
	}
	if n, err := get("/send"); err != nil || n != 8*1024 {
		t.Fatalf("download through exports.Send: %d bytes, %v; want all 8192", n, err)
	}
	if n, err := get("/copy"); err == nil && n == 8*1024 {
		t.Fatal("a plain copy outlived the write timeout: the timeout is not in force")
	}
}
