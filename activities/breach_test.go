package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// A value PostgreSQL cannot store (U+0000 in jsonb) fails every retry alike: the step's error
// is permanent, so the breach's updates are answered instead of waiting on it for ever.
func TestRecordBreachValueTheDatabaseRefusesIsPermanent(t *testing.T) {
	a, st, _ := newActivities(t)
	at := time.Now().UTC()
	id := "B-" + testenv.Suffix()
	step := activities.BreachStep{Key: id + ":1", Open: true, Actor: "dpo@salon", Action: "breach.opened", At: at,
		Breach: store.BreachRow{ID: id, TenantID: "salon", Title: "Lost laptop", Status: "open", AwareAt: at, OpenedBy: "dpo@salon"},
		Facts:  map[string]any{"establishment": "DE"}, State: map[string]any{"note": "found in\x00 the car"}}
	err := a.RecordBreach(context.Background(), step)
	require.Error(t, err)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "%v", err)
	assert.True(t, app.NonRetryable(), "%v", err)
	var n int
	require.NoError(t, st.Pool.QueryRow(context.Background(), `SELECT count(*) FROM breaches WHERE id = $1`, id).Scan(&n))
	assert.Zero(t, n, "nothing of the step was written")
}
