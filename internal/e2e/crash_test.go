package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// letheBinary is the real lethe binary: $LETHE_BIN (deploy/test.sh builds ./bin/lethe), or
// built once for this test run.
func letheBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LETHE_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lethe-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "lethe")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/lethe")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{string(out)}
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

type buildError struct{ out string }

func (e *buildError) Error() string { return "building lethe: " + e.out }

// proc is one lethe process of the stack.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

func (s *stack) start(args ...string) *proc {
	s.t.Helper()
	cmd := exec.Command(letheBinary(s.t), append(args, "--log-format", "text")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{name: strings.Join(args, " "), cmd: cmd, out: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(s.t, cmd.Start())
	s.t.Cleanup(func() {
		p.kill()
		if s.t.Failed() {
			s.t.Logf("--- %s output:\n%s", p.name, p.out.String())
		}
	})
	return p
}

// kill ends the process the way a crash or an OOM kill would: no shutdown code runs.
func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// Killing the worker and the bridge in the middle of a fan-out, and the bridge and the
// connector right after the erasure was applied, and starting them again, completes the
// request with the erasure applied exactly once.
func TestKilledProcessesMidFanOutApplyEffectsOnce(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	email := demo.ClearCustomerEmail
	var customerID int64
	require.NoError(t, s.Demo.QueryRow(ctx, `SELECT id FROM customers WHERE email = $1`, email).Scan(&customerID))

	worker := s.start("worker")
	connector := s.start("connector", "database")
	id := s.Submit(domain.TypeErasure, connectors.Subject{Email: email})

	// The block check was answered, but no bridge runs: the activity is still pending.
	s.nextMessage(bus.TopicResults, func(m bus.Message) bool {
		var r protocol.Result
		return json.Unmarshal(m.Value, &r) == nil && r.RequestID == id && r.Action == "block_check" && r.Status == protocol.StatusSucceeded
	})
	worker.kill()

	bridge := s.start("bridge")
	s.start("worker")
	// The erasure is applied by the connector: kill the bridge and the connector at once.
	s.awaitDemo(`SELECT count(*) FROM lethe_applied_tasks WHERE request_id = $1 AND action = 'erase'`, id, "1")
	bridge.kill()
	connector.kill()
	s.start("bridge")
	s.start("connector", "database")

	st := s.Await(id)
	require.Equal(t, domain.StatusCompleted, st.Status)
	assert.Equal(t, "1", s.scalar(`SELECT count(*) FROM lethe_applied_tasks WHERE request_id = $1 AND action = 'erase'`, id))
	changes, err := demo.Changes(ctx, s.Demo, customerID)
	require.NoError(t, err)
	assert.Equal(t, 1, changes, "the customer's row was erased once")
	assert.Equal(t, "0", s.scalar(`SELECT count(*) FROM customers WHERE email = $1`, email))
	assert.Equal(t, "Erased", s.scalar(`SELECT first_name FROM customers WHERE id = $1`, customerID))
	var completed int
	require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE request_id = $1 AND action = 'request.completed'`, id).Scan(&completed))
	assert.Equal(t, 1, completed)
	assert.Len(t, s.mailTo(email), 2, "acknowledgement and completion, once each")
}

// awaitDemo polls the demo database until the query returns want.
func (s *stack) awaitDemo(q, arg, want string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		var v any
		if err := s.Demo.QueryRow(ctx, q, arg).Scan(&v); err == nil && jsonString(v) == want {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("%s never returned %s", q, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return strings.Trim(string(b), `"`) }
