package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

var metricName = regexp.MustCompile(`\blethe_[a-z0-9_]+\b`)

// exported reports whether name is a series Lethe exports: a name of Names, or a histogram's
// _bucket, _sum or _count.
func exported(name string) bool {
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && slices.Contains(Names(), base) && (suffix == "" || base == TimeToClose || base == ConnectorDuration) {
			return true
		}
	}
	return false
}

func checkNames(t *testing.T, where, expr string) {
	t.Helper()
	names := metricName.FindAllString(expr, -1)
	assert.NotEmpty(t, names, "%s: %q uses none of Lethe's metrics", where, expr)
	for _, n := range names {
		assert.True(t, exported(n), "%s: %q uses %s, which Lethe does not export", where, expr, n)
	}
}

// The dashboard follows Grafana's dashboard model (schemaVersion 39) and every query uses only
// metrics Lethe exports. (deploy/monitoring parses each query with the PromQL parser.)
func TestDashboardUsesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/lethe-dashboard.json")
	require.NoError(t, err)
	var d struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct{ Type, UID string }
			GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
			Targets    []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	assert.Regexp(t, `^[a-z0-9-]{1,40}$`, d.UID, "Grafana uids are at most 40 characters")
	assert.NotEmpty(t, d.Title)
	assert.Equal(t, 39, d.SchemaVersion)
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		assert.Contains(t, []string{"datasource", "query", "custom", "interval", "constant"}, v.Type, v.Name)
	}
	ids := map[int]bool{}
	require.NotEmpty(t, d.Panels)
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		assert.Contains(t, []string{"stat", "timeseries", "bargauge", "gauge", "table"}, p.Type, p.Title)
		assert.True(t, p.GridPos.W > 0 && p.GridPos.X+p.GridPos.W <= 24 && p.GridPos.H > 0, "%s: Grafana's grid is 24 wide", p.Title)
		assert.Equal(t, "prometheus", p.Datasource.Type, p.Title)
		assert.True(t, vars[strings.Trim(p.Datasource.UID, "${}")], "%s: data source %s is no variable", p.Title, p.Datasource.UID)
		require.NotEmpty(t, p.Targets, p.Title)
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			assert.False(t, refs[tg.RefID], "%s: refId %s twice", p.Title, tg.RefID)
			refs[tg.RefID] = true
			checkNames(t, "panel "+p.Title, tg.Expr)
			for _, v := range regexp.MustCompile(`\$\{?([a-z]+)`).FindAllStringSubmatch(tg.Expr, -1) {
				assert.True(t, vars[v[1]], "%s: $%s is not a dashboard variable", p.Title, v[1])
			}
		}
	}
}

// Each alert rule uses only exported metrics, and the three the operators rely on are there.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/prometheus/lethe-rules.yml")
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	require.NoError(t, yaml.Unmarshal(raw, &f))
	var alerts []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			checkNames(t, "alert "+r.Alert, r.Expr)
		}
	}
	assert.Subset(t, alerts, []string{"LetheRequestsOverdue", "LetheDeadLettersGrowing", "LetheConsumerLagGrowing"})
}
