// Package api serves Lethe's HTTP surface: the /v1 JSON API, the MyAccount and dashboard pages,
// health, readiness and metrics.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

// Checker is a dependency whose reachability decides readiness.
type Checker interface {
	Name() string
	Check(ctx context.Context) error
}

// Server is an HTTP handler with health, readiness and metrics mounted, for tests that add
// other surfaces by hand; a Lethe process mounts its surfaces on a plain mux (internal/app).
type Server struct {
	mux      *http.ServeMux
	registry *prometheus.Registry
	log      *slog.Logger
}

// New builds the handler. checks are run, in parallel, on every /readyz.
func New(log *slog.Logger, checks ...Checker) *Server {
	s := &Server{mux: http.NewServeMux(), log: log}
	s.registry = MountHealth(s.mux, log, nil, checks...)
	return s
}

// MountHealth serves /healthz, /readyz (checks run in parallel on each call) and /metrics of
// reg on mux, and returns reg; a nil reg is a new one with the Go runtime's metrics.
func MountHealth(mux *http.ServeMux, log *slog.Logger, reg *prometheus.Registry, checks ...Checker) *prometheus.Registry {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	h := health{checks: checks, log: log}
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return reg
}

// Registry is where other parts of Lethe register their metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Handle mounts another handler (API routes, pages) on the server's mux.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type health struct {
	checks []Checker
	log    *slog.Logger
}

func (health) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness is the body of /readyz: one entry per dependency, "ok" or "unreachable". The
// driver's error goes to the log only: it can name hosts, users and internal addresses.
type Readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (s health) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	res := Readiness{Status: "ok", Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range s.checks {
		wg.Add(1)
		go func(c Checker) {
			defer wg.Done()
			err := c.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Status = "unavailable"
				res.Checks[c.Name()] = "unreachable"
				s.log.Warn("dependency not ready", "dependency", c.Name(), "err", err)
				return
			}
			res.Checks[c.Name()] = "ok"
		}(c)
	}
	wg.Wait()
	code := http.StatusOK
	if res.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// TemporalChecker adapts a Temporal client to a readiness check.
func TemporalChecker(c client.Client) Checker { return temporalCheck{c} }

type temporalCheck struct{ c client.Client }

func (temporalCheck) Name() string { return "temporal" }
func (t temporalCheck) Check(ctx context.Context) error {
	_, err := t.c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}
