// Package localstack starts and stops the real backing services on this machine, as child
// processes: PostgreSQL from the installed server binaries, Apache Kafka from its jars, the
// Temporal CLI dev server, and the in-process kfake broker. `lethe dev` and the test stack
// (`lethe stack`, run by deploy/test.sh) use it.
//
// Every child runs in its own process group with a parent-death signal, so nothing is left
// behind when Lethe dies, and Stop shuts the group down gracefully before killing it.
package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on at the moment of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portOrFree keeps an explicit port and picks a free one for 0.
func portOrFree(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	return FreePort()
}

// checkPortFree turns "address already in use" into a message that names the service.
func checkPortFree(port int, service string) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%s cannot listen on 127.0.0.1:%d (%v): stop whatever uses that port (another Lethe?) or choose another port", service, port, err)
	}
	return l.Close()
}

// child is one service process and its process group.
type child struct {
	name     string
	cmd      *exec.Cmd
	tail     *tailBuffer
	stopSig  syscall.Signal
	stopWait time.Duration

	done    chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

type childOptions struct {
	// stopSig goes to the leader only (PostgreSQL's fast shutdown is SIGINT to the postmaster);
	// zero means SIGTERM to the whole group.
	stopSig  syscall.Signal
	stopWait time.Duration
	cred     *syscall.Credential
	log      io.Writer
}

// startChild starts cmd in its own process group. Output goes to o.log and to a short tail kept
// for error messages.
func startChild(name string, cmd *exec.Cmd, o childOptions) (*child, error) {
	c := &child{name: name, cmd: cmd, tail: &tailBuffer{max: 8 << 10}, stopSig: o.stopSig, stopWait: o.stopWait, done: make(chan struct{})}
	if c.stopWait == 0 {
		c.stopWait = 30 * time.Second
	}
	out := io.Writer(c.tail)
	if o.log != nil {
		out = io.MultiWriter(c.tail, o.log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Grandchildren (PostgreSQL backends) inherit the output pipe; do not let them hold up Wait.
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: o.cred}

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the forking *thread* exits, and the Go runtime may
		// retire threads; keeping this goroutine locked to its thread until the child has exited
		// ties the signal to the child's lifetime.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return c, nil
}

// exited reports the child's end as an error that carries the tail of its output.
func (c *child) exited() error {
	msg := "exited"
	if c.waitErr != nil {
		msg = c.waitErr.Error()
	}
	return fmt.Errorf("%s stopped unexpectedly (%s); its last output:\n%s", c.name, msg, c.tail.String())
}

// stop shuts the child down gracefully, kills the group if it does not finish in time, and
// waits for it. It is safe to call more than once.
func (c *child) stop() error {
	c.stopOnce.Do(func() {
		select {
		case <-c.done:
			return
		default:
		}
		pid := c.cmd.Process.Pid
		if c.stopSig != 0 {
			_ = syscall.Kill(pid, c.stopSig)
		} else {
			_ = syscall.Kill(-pid, syscall.SIGTERM)
		}
		select {
		case <-c.done:
		case <-time.After(c.stopWait):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-c.done
			c.stopErr = fmt.Errorf("%s did not stop within %s and was killed", c.name, c.stopWait)
		}
	})
	return c.stopErr
}

// waitReady polls check until it succeeds, the child exits, ctx ends, or the deadline passes.
func (c *child) waitReady(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not become ready within %s (last check: %v); its last output:\n%s", c.name, timeout, err, c.tail.String())
		}
		select {
		case <-c.done:
			return c.exited()
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", c.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.buf))
	if s == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// lookTool finds a program on PATH and otherwise explains how to install it.
func lookTool(name, hint string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%s not found on PATH: %s", name, hint)
		}
		return "", fmt.Errorf("looking for %s: %w", name, err)
	}
	return p, nil
}
