package app_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/lethe-privacy/lethe/internal/app"
	"github.com/lethe-privacy/lethe/internal/config"
)

// An unreachable Temporal reads like an unreachable Kafka: the address and the dial error,
// without gRPC's own wording around it.
func TestUnreachableTemporalNamesAddressAndCause(t *testing.T) {
	_, err := app.DialTemporal(context.Background(), config.Temporal{HostPort: "127.0.0.1:1", Namespace: "default"}, slog.New(slog.DiscardHandler))
	want := "temporal.host_port (LETHE_TEMPORAL_HOSTPORT): cannot reach Temporal at 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("DialTemporal error:\n %v\nwant\n %s", err, want)
	}
}
