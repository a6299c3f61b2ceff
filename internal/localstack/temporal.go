package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// TemporalOptions configures the Temporal CLI dev server.
type TemporalOptions struct {
	// Binary is the pinned Temporal CLI (deploy/lib.sh builds it into ./bin/temporal).
	Binary string
	// DBFile is the SQLite file that keeps workflow history across restarts; empty keeps it
	// in memory.
	DBFile string
	// Port of the gRPC frontend and UIPort of the Web UI, both on 127.0.0.1; 0 picks a free one.
	Port, UIPort int
	// Namespace is registered at start (and is where readiness is checked); "" means "default",
	// which always exists.
	Namespace string
	// ExtraArgs are appended to `temporal server start-dev`, e.g. --dynamic-config-value K=V.
	ExtraArgs []string
	// Log receives the server's output (warnings and errors); nil discards it.
	Log io.Writer
}

// Temporal is a running Temporal CLI dev server.
type Temporal struct {
	hostPort string
	uiURL    string
	proc     *child
}

// StartTemporal starts `temporal server start-dev` and returns once its frontend serves the
// namespace.
func StartTemporal(ctx context.Context, o TemporalOptions) (*Temporal, error) {
	if o.Binary == "" {
		return nil, errors.New("starting Temporal: no CLI binary given (deploy/dev.sh builds ./bin/temporal)")
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("Temporal CLI not found at %s: build it with deploy/dev.sh, or GOBIN=$PWD/bin go install github.com/temporalio/cli/cmd/temporal@v1.5.1", o.Binary)
	}
	ns := o.Namespace
	if ns == "" {
		ns = "default"
	}
	port, err := portOrFree(o.Port)
	if err != nil {
		return nil, err
	}
	uiPort, err := portOrFree(o.UIPort)
	if err != nil {
		return nil, err
	}
	if err := checkPortFree(port, "the Temporal frontend"); err != nil {
		return nil, err
	}
	if err := checkPortFree(uiPort, "the Temporal Web UI"); err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev", "--ip", "127.0.0.1",
		"--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(uiPort), "--log-level", "warn"}
	if o.DBFile != "" {
		db, err := filepath.Abs(o.DBFile)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
			return nil, fmt.Errorf("creating the directory of %s: %w", db, err)
		}
		args = append(args, "--db-filename", db)
	}
	if ns != "default" { // "default" is always registered; naming it twice is an error
		args = append(args, "--namespace", ns)
	}
	args = append(args, o.ExtraArgs...)

	hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	proc, err := startChild("the Temporal dev server", exec.Command(o.Binary, args...), childOptions{stopWait: 30 * time.Second, log: o.Log})
	if err != nil {
		return nil, err
	}
	err = proc.waitReady(ctx, 2*time.Minute, func() error { return temporalServes(ctx, hostPort, ns) })
	if err != nil {
		_ = proc.stop()
		return nil, fmt.Errorf("starting Temporal on %s: %w", hostPort, err)
	}
	return &Temporal{hostPort: hostPort, uiURL: fmt.Sprintf("http://127.0.0.1:%d", uiPort), proc: proc}, nil
}

// HostPort is the frontend address for client.Options.HostPort.
func (t *Temporal) HostPort() string { return t.hostPort }

// UIURL is the address of the Temporal Web UI.
func (t *Temporal) UIURL() string { return t.uiURL }

// Done is closed when the server process has exited, after Stop or on its own.
func (t *Temporal) Done() <-chan struct{} { return t.proc.done }

// Stop shuts the server down and waits.
func (t *Temporal) Stop() error { return t.proc.stop() }

// temporalServes reports whether the frontend is healthy and knows the namespace.
func temporalServes(ctx context.Context, hostPort, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	quiet := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	c, err := client.DialContext(ctx, client.Options{HostPort: hostPort, Namespace: ns, Logger: quiet})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	nc, err := client.NewNamespaceClient(client.Options{HostPort: hostPort, Logger: quiet})
	if err != nil {
		return err
	}
	defer nc.Close()
	_, err = nc.Describe(ctx, ns)
	return err
}

// PID is the server's process ID, for reading what it spent (/proc/PID/stat).
func (t *Temporal) PID() int { return t.proc.cmd.Process.Pid }
