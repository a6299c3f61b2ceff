package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func readyz(t *testing.T, h http.Handler) (int, api.Readiness) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var r api.Readiness
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("readyz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, r
}

// Readiness really asks PostgreSQL, Kafka and Temporal, and reports the one that is down.
func TestReadyzChecksEveryDependency(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, testenv.PostgresURL(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(ctx, bus.Config{Brokers: testenv.KafkaBrokers(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tc := testenv.Temporal(t)

	h := api.New(slog.Default(), s, b, api.TemporalChecker(tc))
	code, r := readyz(t, h)
	if code != 200 || r.Checks["postgres"] != "ok" || r.Checks["kafka"] != "ok" || r.Checks["temporal"] != "ok" {
		t.Fatalf("readyz = %d %+v, want 200 with all three ok", code, r)
	}

	s.Close() // PostgreSQL becomes unreachable for this process
	code, r = readyz(t, h)
	if code != http.StatusServiceUnavailable || r.Checks["postgres"] != "unreachable" || r.Checks["kafka"] != "ok" {
		t.Fatalf("readyz with the database gone = %d %+v, want 503 with postgres unreachable and no driver error", code, r)
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	h := api.New(slog.Default())
	for _, path := range []string{"/healthz", "/metrics"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Errorf("%s = %d", path, rec.Code)
		}
	}
}
