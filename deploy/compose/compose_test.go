// Package compose holds the single-host Docker Compose stack (compose.yaml) and its test.
package compose

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/joho/godotenv"

	_ "github.com/lethe-privacy/lethe/connectors/builtin" // the types lethe.yaml may configure
	"github.com/lethe-privacy/lethe/internal/config"
)

// No Docker engine runs here, so the file is checked the way docker compose reads it: the
// compose-spec loader validates it against the specification's schema, interpolates .env, and
// every Lethe service's environment with lethe.yaml must load as a valid Lethe configuration.
func TestComposeFileLoads(t *testing.T) {
	env, err := godotenv.Read("env.example")
	if err != nil {
		t.Fatal(err)
	}
	// env_file: [.env] must exist for the loader; the example stands in for it.
	dir := t.TempDir()
	for _, f := range []string{"compose.yaml", "lethe.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	b, _ := os.ReadFile("env.example")
	os.WriteFile(filepath.Join(dir, ".env"), b, 0o600)
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("lethe", true) })
	if err != nil {
		t.Fatalf("docker compose would refuse compose.yaml: %v", err)
	}
	names := slices.Sorted(maps.Keys(project.Services))
	want := []string{"bridge", "kafka", "migrate", "postgres", "runner-salon-db", "serve", "temporal", "worker"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	images := map[string]string{"postgres": "postgres:15", "kafka": "apache/kafka:3.9.1", "temporal": "temporalio/auto-setup:1.29.1"}
	for svc, img := range images {
		if project.Services[svc].Image != img {
			t.Errorf("%s runs %s, want the official image %s", svc, project.Services[svc].Image, img)
		}
	}
	commands := map[string][]string{"migrate": {"migrate", "--topics"}, "serve": {"serve"}, "worker": {"worker"}, "bridge": {"bridge"}, "runner-salon-db": {"connector", "salon-db"}}
	cfgFile := filepath.Join(dir, "lethe.yaml")
	for svc, cmd := range commands {
		s := project.Services[svc]
		if !slices.Equal(s.Command, cmd) {
			t.Errorf("%s runs lethe %v, want %v", svc, s.Command, cmd)
		}
		if svc != "migrate" {
			if dep, ok := s.DependsOn["migrate"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for the migrations: %+v", svc, s.DependsOn)
			}
		}
		// What the container sees: its environment (env_file and environment merged by the
		// loader) and lethe.yaml mounted at LETHE_CONFIG.
		lookup := func(k string) (string, bool) {
			v, ok := s.Environment[k]
			if !ok || v == nil {
				return "", false
			}
			return *v, true
		}
		if v, _ := lookup("LETHE_CONFIG"); v != "/etc/lethe/lethe.yaml" || !mounts(s, "/etc/lethe/lethe.yaml") {
			t.Errorf("%s: lethe.yaml is not mounted where LETHE_CONFIG points (%q)", svc, v)
		}
		cfg, err := config.LoadFrom(cfgFile, lookup)
		if err != nil {
			t.Fatalf("%s: Lethe would not start with this environment: %v", svc, err)
		}
		if cfg.Temporal.HostPort != "temporal:7233" || !strings.HasPrefix(cfg.Database.URL, "postgres://lethe:change-me@postgres:5432/") {
			t.Errorf("%s: temporal %s, database %s", svc, cfg.Temporal.HostPort, cfg.Database.URL)
		}
		if !mounts(s, cfg.Exports.Dir) {
			t.Errorf("%s: exports.dir %s is not the shared volume", svc, cfg.Exports.Dir)
		}
	}
}

func mounts(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Target == target {
			return true
		}
	}
	return false
}
