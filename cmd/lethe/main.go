// Command lethe is Lethe's single binary: the local stack, the production services and the
// operator commands. It only wires packages together; the behaviour lives under internal/ and
// the top-level packages.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lethe:", oneLine(err.Error()))
		code := 1
		var ec exitError
		if errors.As(err, &ec) {
			code = ec.code
		}
		os.Exit(code)
	}
}

// exitError is an error that ends lethe with a status of its own, for answers a script acts
// on (migrate --check's "pending").
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// oneLine folds a multi-line error (a driver listing each address it tried) into one line,
// dropping repeats, so a failed start always reads as a single line.
func oneLine(msg string) string {
	var parts []string
	seen := map[string]bool{}
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !seen[l] {
			seen[l] = true
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "lethe",
		Short: "Privacy-request workflow engine: data-subject requests and breaches with legal deadlines",
		Long: `Lethe drives data-subject requests (access, portability, rectification, erasure,
restriction, objection) and personal-data breaches through durable Temporal workflows,
fans the work out over Kafka to connectors, and keeps every legal deadline.

Configuration comes from the YAML file named by LETHE_CONFIG, with environment overrides
(see the README). Start with "lethe dev" to run the whole stack on this machine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDevCmd(), newServeCmd(), newWorkerCmd(), newBridgeCmd(), newConnectorCmd(), newMigrateCmd(), newRequestsCmd(), newBreachesCmd(), newDemoCmd())
	root.AddCommand(newDeadlineCmd(), newAuditCmd(), newRetentionCmd())
	root.AddCommand(newStackCmd(), newSlackCmd(), newWebhooksCmd(), newBenchCmd())
	return root
}
