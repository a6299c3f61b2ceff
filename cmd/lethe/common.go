package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/lethe-privacy/lethe/internal/config"
)

// signalContext ends on Ctrl-C or SIGTERM, so every command shuts down the same way.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// newLogger writes structured logs to stderr: JSON in production, text for people at a terminal.
func newLogger(format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// loadConfig is config.Load; its errors already name the setting.
func loadConfig() (config.Config, error) { return config.Load() }
