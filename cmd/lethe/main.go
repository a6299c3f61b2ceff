// Command lethe is Lethe's single binary: the local stack, the production services and the
// operator commands. It only wires packages together; the behaviour lives under internal/ and
// the top-level packages.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lethe:", err)
		os.Exit(1)
	}
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
	root.AddCommand(newDevCmd(), newServeCmd(), newWorkerCmd(), newBridgeCmd(), newConnectorCmd(), newMigrateCmd(), newRequestsCmd())
	root.AddCommand(newDeadlineCmd())
	root.AddCommand(newStackCmd())
	return root
}
