package localstack

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/lethe-privacy/lethe/internal/testenv"
)

func startTemporal(t *testing.T, o TemporalOptions) *Temporal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := &syncBuffer{}
	o.Log = out
	tmp, err := StartTemporal(ctx, o)
	if err != nil {
		t.Fatalf("%v\nserver output:\n%s", err, out)
	}
	t.Cleanup(func() { _ = tmp.Stop() })
	return tmp
}

func TestTemporalDevServer(t *testing.T) {
	bin := testenv.TemporalBinary(t)
	db := filepath.Join(t.TempDir(), "state", "temporal.db")
	tmp := startTemporal(t, TemporalOptions{Binary: bin, DBFile: db, Namespace: "lethe-test"})

	quiet := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(client.Options{HostPort: tmp.HostPort(), Namespace: "lethe-test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}
	c.Close()

	resp, err := http.Get(tmp.UIURL())
	if err != nil {
		t.Fatalf("Web UI at %s: %v", tmp.UIURL(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Web UI at %s: %s", tmp.UIURL(), resp.Status)
	}

	// The namespace lives in the database file, so a restart over it (with "default" asked
	// for this time) still has it: lethe dev keeps its history between runs.
	if err := tmp.Stop(); err != nil {
		t.Fatal(err)
	}
	<-tmp.Done()
	tmp = startTemporal(t, TemporalOptions{Binary: bin, DBFile: db})
	nc, err := client.NewNamespaceClient(client.Options{HostPort: tmp.HostPort(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Describe(ctx, "lethe-test"); err != nil {
		t.Fatalf("namespace after restart over the same database file: %v", err)
	}
}

func TestTemporalMissingBinary(t *testing.T) {
	_, err := StartTemporal(context.Background(), TemporalOptions{Binary: filepath.Join(t.TempDir(), "temporal")})
	if err == nil || !strings.Contains(err.Error(), "go install github.com/temporalio/cli/cmd/temporal@v1.5.1") {
		t.Fatalf("err = %v", err)
	}
}
