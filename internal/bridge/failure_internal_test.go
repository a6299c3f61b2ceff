package bridge

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/connectors/protocol"
)

// A failed result becomes the activity's error: permanent ones are not retried, and a
// connector's retry hint becomes the next retry delay, overriding the workflow's backoff.
func TestFailureCarriesTheRetryHint(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       *protocol.ResultError
		code      string
		retryable bool
		delay     time.Duration
	}{
		{"no error", nil, "transient", true, 0},
		{"transient", &protocol.ResultError{Message: "busy", Code: "transient"}, "transient", true, 0},
		{"retry after", &protocol.ResultError{Message: "rate limited", Code: "transient", RetryAfterSeconds: 90}, "transient", true, 90 * time.Second},
		{"permanent", &protocol.ResultError{Message: "bad", Permanent: true, Code: "permanent"}, "permanent", false, 0},
		// A hint on a permanent failure is meaningless: nothing is retried.
		{"permanent with hint", &protocol.ResultError{Message: "bad", Permanent: true, Code: "permanent", RetryAfterSeconds: 5}, "permanent", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := failure(protocol.Result{Status: protocol.StatusFailed, Error: tc.err})
			var app *temporal.ApplicationError
			require.True(t, errors.As(err, &app))
			assert.Equal(t, !tc.retryable, app.NonRetryable())
			assert.Equal(t, tc.delay, app.NextRetryDelay())
			if tc.retryable {
				assert.Equal(t, tc.code, app.Type())
			} else {
				assert.Equal(t, activities.ErrPermanent, app.Type())
				var details string
				require.NoError(t, app.Details(&details))
				assert.Equal(t, tc.code, details)
			}
		})
	}
}
