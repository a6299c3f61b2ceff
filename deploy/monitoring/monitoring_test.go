// Package monitoring checks the Prometheus rules and the Grafana dashboard in deploy/ with
// Prometheus's own rule and PromQL parsers (what promtool check rules runs). It is a module of
// its own so that Lethe's go.mod does not carry the Prometheus server's dependencies; which
// metric names may appear is checked against Lethe's exported names in internal/metrics.
package monitoring

import (
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	rulesFile     = "../prometheus/lethe-rules.yml"
	dashboardFile = "../grafana/lethe-dashboard.json"
)

var promql = parser.NewParser(parser.Options{})

// selectors are the metric names expr selects; each must be one of Lethe's.
func selectors(t *testing.T, where, expr string) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return
	}
	n := 0
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			n++
			if !strings.HasPrefix(vs.Name, "lethe_") {
				t.Errorf("%s: %q selects %q, which Lethe does not export", where, expr, vs.Name)
			}
		}
		return nil
	})
	if n == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
}

// The rules file passes what promtool check rules checks: the format, every expression,
// every template in labels and annotations.
func TestRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		return
	}
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			selectors(t, "alert "+r.Alert, r.Expr)
		}
	}
	for _, want := range []string{"LetheRequestsOverdue", "LetheDeadLettersGrowing", "LetheConsumerLagGrowing"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// Every panel's query parses as PromQL once Grafana has put in its variables.
func TestDashboardQueries(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			selectors(t, "panel "+p.Title, strings.ReplaceAll(tg.Expr, "$tenant", ".*"))
		}
	}
}
