package e2e_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// studio is a second tenant beside teststack.Salon.
const studio = `
  - id: studio
    name: Studio Example
    regime: gdpr
    country: DE
    contact_email: privacy@studio.example
    policy: {manual_approval: []}`

// commandsOn lists the request of every command on an instance's command topic.
func (s *stack) commandsOn(instance string) []string {
	s.t.Helper()
	var ids []string
	for _, m := range s.readAll(s.Prefix + protocol.CommandTopic(instance)) {
		var c protocol.Command
		require.NoError(s.t, json.Unmarshal(m.Value, &c))
		require.Equal(s.t, instance, c.Connector, "a command on the topic of %s", instance)
		ids = append(ids, c.RequestID)
	}
	return ids
}

// Two tenants, each with a database of its own behind an instance of the database connector:
// the same customer is in both (two copies of the demo salon), and each tenant's erasure
// reaches only its own database, over its own instance's command topic.
func TestEachTenantsErasureReachesOnlyItsOwnDatabase(t *testing.T) {
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e", Tenants: teststack.Salon + studio, Databases: []teststack.Database{
		{Name: "salon-db", Tenants: []string{"salon"}}, {Name: "studio-db", Tenants: []string{"studio"}},
	}}), t: t}
	s.RunAll()
	ctx := context.Background()
	email := demo.ClearCustomerEmail
	customer := map[string]int64{}
	for name, db := range s.Demos {
		// Each instance's runner prepares its own database (its ledger) before serving.
		require.Eventually(t, func() bool {
			var ready bool
			return db.QueryRow(ctx, `SELECT to_regclass('lethe_applied_tasks') IS NOT NULL`).Scan(&ready) == nil && ready
		}, time.Minute, 50*time.Millisecond, "%s's runner did not start", name)
		var id int64
		require.NoError(t, db.QueryRow(ctx, `SELECT id FROM customers WHERE email = $1`, email).Scan(&id), name)
		customer[name] = id
	}
	// state is what an instance's database shows of the customer: still findable by email,
	// changes to their row, and tasks in the connector's own ledger.
	type state struct{ found, changes, applied int }
	stateOf := func(instance string) state {
		db := s.Demos[instance]
		var st state
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM customers WHERE email = $1`, email).Scan(&st.found))
		var err error
		st.changes, err = demo.Changes(ctx, db, customer[instance])
		require.NoError(t, err)
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM lethe_applied_tasks`).Scan(&st.applied))
		return st
	}
	erase := func(tenant string) string {
		id, err := s.Deps.Requests().Submit(ctx, requests.Submission{
			TenantID: tenant, Type: domain.TypeErasure, Subject: connectors.Subject{Email: email}, IdentityVerified: true, Channel: "api",
		})
		require.NoError(t, err)
		st := s.Await(id)
		require.Equal(t, domain.StatusCompleted, st.Status, "%s's erasure", tenant)
		require.NotEmpty(t, st.Connectors)
		for _, o := range st.Connectors {
			assert.Equal(t, tenant+"-db", o.Connector, "%s's erasure fanned out to %s %s", tenant, o.Connector, o.Action)
		}
		for _, table := range []string{"connector_commands", "connector_tasks"} {
			var reached []string
			require.NoError(t, s.Deps.Store.Pool.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT connector), '{}') FROM `+table+` WHERE request_id = $1`, id).Scan(&reached))
			assert.Equal(t, []string{tenant + "-db"}, reached, "%s of %s's erasure", table, tenant)
		}
		return id
	}

	salon := erase("salon")
	erased, untouched := stateOf("salon-db"), stateOf("studio-db")
	assert.Zero(t, erased.found, "the salon's copy of the customer is erased")
	assert.Positive(t, erased.changes)
	assert.Positive(t, erased.applied)
	assert.Equal(t, state{found: 1}, untouched, "the studio's database is not touched by the salon's erasure")
	assert.Contains(t, s.commandsOn("salon-db"), salon)
	assert.NotContains(t, s.commandsOn("studio-db"), salon)

	studioID := erase("studio")
	assert.Equal(t, erased, stateOf("salon-db"), "the salon's database is not touched by the studio's erasure")
	now := stateOf("studio-db")
	assert.Zero(t, now.found, "the studio's copy of the customer is erased")
	assert.Positive(t, now.changes)
	assert.Positive(t, now.applied)
	assert.Contains(t, s.commandsOn("studio-db"), studioID)
	assert.NotContains(t, s.commandsOn("salon-db"), studioID)
}
