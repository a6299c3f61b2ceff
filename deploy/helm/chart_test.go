// Package helm holds Lethe's Helm chart (lethe/) and the test that renders it.
package helm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/lethe-privacy/lethe/connectors"
	_ "github.com/lethe-privacy/lethe/connectors/builtin"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// kinds are the objects the chart may render, each decoded strictly into its k8s.io/api type:
// a field the API does not have (a typo, a wrong indent) fails the test.
var kinds = map[string]func() any{
	"ConfigMap":               func() any { return &corev1.ConfigMap{} },
	"Secret":                  func() any { return &corev1.Secret{} },
	"ServiceAccount":          func() any { return &corev1.ServiceAccount{} },
	"Service":                 func() any { return &corev1.Service{} },
	"PersistentVolumeClaim":   func() any { return &corev1.PersistentVolumeClaim{} },
	"Deployment":              func() any { return &appsv1.Deployment{} },
	"Job":                     func() any { return &batchv1.Job{} },
	"HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"PodDisruptionBudget":     func() any { return &policyv1.PodDisruptionBudget{} },
	"Ingress":                 func() any { return &networkingv1.Ingress{} },
}

// release is one rendered release, by kind and name.
type release struct {
	objects map[string]map[string]any
	values  map[string]any
}

func (r release) get(kind, name string) any { return r.objects[kind][name] }

func (r release) deployments() map[string]*appsv1.Deployment {
	out := map[string]*appsv1.Deployment{}
	for name, o := range r.objects["Deployment"] {
		out[name] = o.(*appsv1.Deployment)
	}
	return out
}

func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LETHE_HELM"); p != "" {
		return p
	}
	p, _ := filepath.Abs("../../bin/helm")
	if _, err := os.Stat(p); err != nil {
		testenv.Unavailable(t, "helm not found: deploy/test.sh builds it into ./bin (go install helm.sh/helm/v3/cmd/helm@v3.22.0), or set LETHE_HELM")
	}
	return p
}

// render runs helm template on the chart with the given values file ("" for the defaults) and
// decodes every object strictly.
func render(t *testing.T, values string) release {
	t.Helper()
	helm := helmBinary(t)
	args := []string{"template", "prod", "./lethe", "--namespace", "privacy"}
	if values != "" {
		args = append(args, "--values", values)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	rel := release{objects: map[string]map[string]any{}}
	docs := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if string(js) == "null" {
			continue
		}
		var meta metav1.TypeMeta
		if err := json.Unmarshal(js, &meta); err != nil {
			t.Fatal(err)
		}
		newObj, ok := kinds[meta.Kind]
		if !ok {
			t.Fatalf("the chart renders a %s %s, which this test does not know", meta.APIVersion, meta.Kind)
		}
		obj := newObj()
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Fatalf("%s does not decode strictly into its k8s.io/api type: %v\n%s", meta.Kind, err, doc)
		}
		name := obj.(metav1.Object).GetName()
		if rel.objects[meta.Kind] == nil {
			rel.objects[meta.Kind] = map[string]any{}
		}
		if _, dup := rel.objects[meta.Kind][name]; dup {
			t.Fatalf("two %s objects named %s", meta.Kind, name)
		}
		rel.objects[meta.Kind][name] = obj
	}
	return rel
}

func TestChartLints(t *testing.T) {
	helm := helmBinary(t)
	for _, values := range []string{"", "testdata/production.yaml"} {
		args := []string{"lint", "--strict", "./lethe"}
		if values != "" {
			args = append(args, "--values", values)
		}
		if out, err := exec.Command(helm, args...).CombinedOutput(); err != nil {
			t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The defaults: one Deployment per part and per connector instance, each probed on the port it
// serves, with resource requests, waiting for the schema, and a migration Job.
func TestChartDefaults(t *testing.T) {
	rel := render(t, "")
	deps := rel.deployments()
	want := []string{"prod-lethe-bridge", "prod-lethe-runner-salon-db", "prod-lethe-serve", "prod-lethe-worker"}
	got := slices.Sorted(func(yield func(string) bool) {
		for n := range deps {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(got, want) {
		t.Fatalf("deployments %v, want %v", got, want)
	}
	commands := map[string][]string{
		"prod-lethe-serve": {"serve"}, "prod-lethe-worker": {"worker"}, "prod-lethe-bridge": {"bridge"},
		"prod-lethe-runner-salon-db": {"connector", "salon-db"},
	}
	for name, d := range deps {
		checkPod(t, rel, name, d.Spec.Template)
		args := d.Spec.Template.Spec.Containers[0].Args
		if !slices.Equal(args[:len(commands[name])], commands[name]) {
			t.Errorf("%s runs lethe %v, want lethe %v", name, args, commands[name])
		}
		if d.Spec.Replicas == nil {
			t.Errorf("%s: no replicas although autoscaling is off", name)
		}
	}
	job, ok := rel.get("Job", "prod-lethe-migrate-1").(*batchv1.Job)
	if !ok {
		t.Fatalf("no migration job prod-lethe-migrate-1; jobs: %v", rel.objects["Job"])
	}
	if args := job.Spec.Template.Spec.Containers[0].Args; !slices.Equal(args, []string{"migrate", "--topics"}) {
		t.Errorf("the migration job runs lethe %v", args)
	}
	svc := rel.get("Service", "prod-lethe").(*corev1.Service)
	for k, v := range svc.Spec.Selector {
		if deps["prod-lethe-serve"].Spec.Template.Labels[k] != v {
			t.Errorf("the service selects %s=%s, which the serve pods do not carry", k, v)
		}
	}
	if len(rel.objects["HorizontalPodAutoscaler"]) != 0 || len(rel.objects["Ingress"]) != 0 {
		t.Error("autoscalers or an ingress rendered although the defaults turn them off")
	}
}

// A production release: every pod's environment and the rendered lethe.yaml load as a valid
// Lethe configuration (what the pod would see at start), remote instances get no runner,
// autoscaled parts get an autoscaler instead of a replica count, and per-instance overrides
// apply.
func TestChartProductionRelease(t *testing.T) {
	rel := render(t, "testdata/production.yaml")
	deps := rel.deployments()
	if _, ok := deps["prod-lethe-runner-newsletter"]; ok {
		t.Error("the remote instance newsletter got a runner; its own program serves it")
	}
	for _, name := range []string{"prod-lethe-runner-salon-db", "prod-lethe-runner-spa-db"} {
		if deps[name] == nil {
			t.Fatalf("no runner %s", name)
		}
	}
	if r := deps["prod-lethe-runner-salon-db"]; *r.Spec.Replicas != 3 || r.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String() != "500m" {
		t.Errorf("salon-db's overrides not applied: replicas %d, cpu %s", *r.Spec.Replicas, r.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu())
	}
	if deps["prod-lethe-serve"].Spec.Replicas != nil {
		t.Error("serve has a replica count although its autoscaler owns it")
	}
	hpa, ok := rel.get("HorizontalPodAutoscaler", "prod-lethe-serve").(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok || hpa.Spec.ScaleTargetRef.Name != "prod-lethe-serve" || hpa.Spec.MaxReplicas != 12 {
		t.Errorf("serve's autoscaler: %+v", hpa)
	}
	if ing, ok := rel.get("Ingress", "prod-lethe").(*networkingv1.Ingress); !ok || ing.Spec.TLS[0].SecretName != "privacy-tls" {
		t.Errorf("ingress: %+v", ing)
	}
	if _, ok := rel.get("PersistentVolumeClaim", "prod-lethe-exports").(*corev1.PersistentVolumeClaim); ok {
		t.Error("a claim was made although exports.existingClaim names one")
	}
	secret := rel.get("Secret", "prod-lethe-env").(*corev1.Secret)
	cm := rel.get("ConfigMap", "prod-lethe-config").(*corev1.ConfigMap)
	cfgFile := filepath.Join(t.TempDir(), "lethe.yaml")
	if err := os.WriteFile(cfgFile, []byte(cm.Data["lethe.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, d := range deps {
		checkPod(t, rel, name, d.Spec.Template)
		c := d.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for k, v := range secret.StringData {
			env[k] = v
		}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		cfg, err := config.LoadFrom(cfgFile, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatalf("%s: the rendered configuration does not load as the pod would load it: %v", name, err)
		}
		if cfg.Temporal.HostPort != "temporal.prod:7233" || len(cfg.Kafka.Brokers) != 3 || cfg.HTTP.HealthAddr != "0.0.0.0:9090" {
			t.Errorf("%s: loaded temporal %s, brokers %v, health %s", name, cfg.Temporal.HostPort, cfg.Kafka.Brokers, cfg.HTTP.HealthAddr)
		}
		if c.Args[0] == "connector" {
			in, err := cfg.Served(c.Args[1])
			if err != nil {
				t.Fatal(err)
			}
			raw, err := in.ConfigYAML()
			if err != nil {
				t.Fatal(err)
			}
			info, _ := connectors.Lookup(in.Type)
			if _, err := connectors.DecodeConfig(info, raw); err != nil {
				t.Errorf("%s: instance %s's config is refused: %v", name, in.Name, err)
			}
		}
	}
}

// checkPod holds for every Lethe pod: probes on a declared port, resource requests, the
// wait-for-schema init container, and references to objects the release renders.
func checkPod(t *testing.T, rel release, name string, tpl corev1.PodTemplateSpec) {
	t.Helper()
	spec := tpl.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(spec.Containers))
	}
	c := spec.Containers[0]
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for probeName, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || !ports[p.HTTPGet.Port.StrVal] {
			t.Errorf("%s: %s probe %+v does not target a declared port (%v)", name, probeName, p, ports)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("%s: readiness on %s, want /readyz", name, c.ReadinessProbe.HTTPGet.Path)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s: no CPU or memory request", name)
	}
	if len(spec.InitContainers) != 1 || !slices.Equal(spec.InitContainers[0].Args, []string{"migrate", "--check"}) {
		t.Errorf("%s: pods do not wait for the schema: %+v", name, spec.InitContainers)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem is writable", name)
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil && rel.get("Secret", ef.SecretRef.Name) == nil {
			t.Errorf("%s: envFrom names secret %s, which the release does not render", name, ef.SecretRef.Name)
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && rel.get("ConfigMap", v.ConfigMap.Name) == nil {
			t.Errorf("%s: volume %s names config map %s, not rendered", name, v.Name, v.ConfigMap.Name)
		}
		if v.PersistentVolumeClaim != nil && rel.get("PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) == nil &&
			v.PersistentVolumeClaim.ClaimName != "lethe-exports-nfs" {
			t.Errorf("%s: volume %s names claim %s, not rendered", name, v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	if spec.ServiceAccountName == "" || rel.get("ServiceAccount", spec.ServiceAccountName) == nil {
		t.Errorf("%s: service account %q not rendered", name, spec.ServiceAccountName)
	}
}
