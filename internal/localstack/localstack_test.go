package localstack

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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

func TestStopKillsAChildThatIgnoresSIGTERM(t *testing.T) {
	// exec keeps the ignored disposition, so tail ignores SIGTERM like a hung server would.
	ready := &lineWaiter{want: "trap set", seen: make(chan struct{})}
	c, err := startChild("stubborn", exec.Command("sh", "-c", `trap "" TERM; echo trap set; exec tail -f /dev/null`),
		childOptions{stopWait: 300 * time.Millisecond, log: ready})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready.seen:
	case <-c.done:
		t.Fatalf("child exited early: %v", c.exited())
	}
	err = c.stop()
	if err == nil || !strings.Contains(err.Error(), "stubborn did not stop within 300ms and was killed") {
		t.Fatalf("stop: err = %v", err)
	}
	select {
	case <-c.done:
	default:
		t.Fatal("stop returned before the child had exited")
	}
}

// lineWaiter closes seen once the output contains want.
type lineWaiter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// TestChildDiesWithLethe runs this test binary as a stand-in for lethe, which starts a child and
// is then killed outright: the child must not survive it.
func TestChildDiesWithLethe(t *testing.T) {
	if os.Getenv("LETHE_LOCALSTACK_PARENT") == "1" {
		// cat reads the test's pipe, which stays open, so nothing but the parent-death signal
		// ends it.
		cmd := exec.Command("cat")
		cmd.Stdin = os.Stdin
		c, err := startChild("orphan candidate", cmd, childOptions{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(c.cmd.Process.Pid)
		<-c.done // until the test kills us
		os.Exit(0)
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithLethe$")
	parent.Env = append(os.Environ(), "LETHE_LOCALSTACK_PARENT=1")
	// Our own pipe rather than StdinPipe, whose write end Wait would close.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	parent.Stdin = r
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	// A pidfd, opened while the parent still holds the child, becomes readable when the child
	// exits, whoever reaps it.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("child %d is not running while its parent is: %v", pid, err)
	}
	defer unix.Close(fd)
	if !alive(pid) {
		t.Fatalf("child %d is not running while its parent is", pid)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10_000)
	if err != nil || n == 0 {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		t.Fatalf("child %d outlived its killed parent by 10s (poll: %d, %v)", pid, n, err)
	}
}

// alive is true for a running process; a zombie waiting for init to reap it counts as dead.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
