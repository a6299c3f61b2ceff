package app

import (
	"log/slog"

	"go.temporal.io/sdk/log"
)

// newTemporalLogger routes the Temporal SDK's logs through slog at warning level and above:
// its informational lines would drown Lethe's own.
func newTemporalLogger(l *slog.Logger) log.Logger { return quiet{log.NewStructuredLogger(l)} }

type quiet struct{ log.Logger }

func (quiet) Debug(string, ...interface{}) {}
func (quiet) Info(string, ...interface{})  {}
