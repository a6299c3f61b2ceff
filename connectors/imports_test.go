package connectors_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/internal/testenv"
)

// Nothing under connectors/ imports Lethe's internal packages: the SDK, the wire protocol and
// every connector must be usable by a program outside this module (deploy/examples/go-connector).
func TestNoConnectorPackageImportsInternal(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Unavailable(t, "the go command is not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .Deps}} dep:{{.}}{{end}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list ./connectors/...: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		var direct, indirect []string
		for _, f := range fields[1:] {
			dep, isDep := strings.CutPrefix(f, "dep:")
			if !strings.Contains(dep, "/lethe/internal/") {
				continue
			}
			if isDep {
				indirect = append(indirect, dep)
			} else {
				direct = append(direct, dep)
			}
		}
		if len(direct) > 0 {
			t.Errorf("%s imports %s", fields[0], strings.Join(direct, ", "))
		} else if len(indirect) > 0 {
			t.Errorf("%s depends on %s", fields[0], strings.Join(indirect, ", "))
		}
	}
}
