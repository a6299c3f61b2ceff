package domain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The vocabulary sits below everything that uses it: it imports neither the bus, nor the
// wire format, nor the workflow and its activities. And MyAccount, which only reads requests,
// reads them in these words, without importing the workflow package or the bus.
func TestVocabularyImportsNoWorkflowOrWire(t *testing.T) {
	forbidden := []string{"/internal/bus", "/connectors/protocol", "/workflows", "/activities"}
	check := func(pkg, format string, banned []string) {
		out, err := exec.Command("go", "list", "-f", format, pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, imp := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.HasSuffix(imp, b) {
					t.Errorf("%s imports %s", pkg, imp)
				}
			}
		}
	}
	check(".", `{{join .Deps " "}}`, forbidden)
	check("../web", `{{join .Imports " "}}`, []string{"/internal/bus", "/connectors/protocol", "/workflows"})
}
