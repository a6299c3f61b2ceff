package connectors

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ReadSecret reads a secret (a connection string, an API key) from the environment variable
// env or, when env is empty, from file; what names it in errors. Surrounding space is trimmed.
// Both empty gives "".
func ReadSecret(what, env, file string) (string, error) {
	var v string
	switch {
	case env != "":
		v = os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("reading %s: environment variable %s is not set", what, env)
		}
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading %s from %s: %w", what, file, err)
		}
		v = string(b)
	}
	return strings.TrimSpace(v), nil
}

// CheckParams refuses, permanently, a task carrying a param not in allowed: a typo must not
// silently change what is done.
func CheckParams(task Task, allowed ...string) error {
	for k := range task.Params {
		if !slices.Contains(allowed, k) {
			return Permanent(fmt.Errorf("unknown param %q", k))
		}
	}
	return nil
}

// Changes reads a rectification's params: "changes", a map of field to new value, and no
// other param. Missing or empty is a permanent error.
func Changes(task Task) (map[string]any, error) {
	if err := CheckParams(task, "changes"); err != nil {
		return nil, err
	}
	changes, ok := task.Params["changes"].(map[string]any)
	if !ok || len(changes) == 0 {
		return nil, Permanent(errors.New(`rectify needs param "changes": a map of field to new value`))
	}
	return changes, nil
}
