package localstack

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// unavailable skips a test whose prerequisite is missing on this machine, except under CI,
// where it fails so CI cannot pass by skipping.
func unavailable(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// serviceDir is a temporary directory that an unprivileged server user can reach too
// (t.TempDir's parent is private to us).
func serviceDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// syncBuffer collects a service's output for the failure message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 10}
	_, _ = tb.Write([]byte("0123456789"))
	_, _ = tb.Write([]byte("abcd\n"))
	if got := tb.String(); got != "  56789abcd" {
		t.Fatalf("tail = %q", got)
	}
}

func TestCheckPortFreeNamesTheService(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPortFree(p, "Kafka"); err != nil {
		t.Fatalf("free port reported busy: %v", err)
	}
	k, err := StartKfake(KfakeOptions{Port: p})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	err = checkPortFree(p, "Kafka")
	if err == nil || !strings.Contains(err.Error(), "Kafka cannot listen on 127.0.0.1:") {
		t.Fatalf("busy port: err = %v", err)
	}
}
