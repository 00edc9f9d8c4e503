package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// chartDir is the chart, from this module's folder.
const chartDir = "../fpmq"

// helm returns the Helm binary: FPMQ_HELM (make helm-test builds it from
// the Go module proxy and sets it), or helm on PATH.
func helm(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("FPMQ_HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		t.Skip("no Helm: run make helm-test, or set FPMQ_HELM")
	}
	return h
}

func runHelm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w: %s%s", strings.Join(args, " "), err, stderr.String(), out)
	}
	return out, nil
}

// valueFiles are the documented variations, "" standing for the defaults.
func valueFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("ci/*-values.yaml: %v (found %d, want at least 4)", err, len(files))
	}
	return append([]string{""}, files...)
}

// render lints the chart and renders it with the values file f (none if
// empty) and the extra args, and decodes every document strictly.
func render(t *testing.T, d *Decoder, f string, extra ...string) []runtime.Object {
	t.Helper()
	args := []string{"template", "rel", chartDir, "--namespace", "jobs"}
	if f != "" {
		args = append(args, "-f", f)
	}
	out, err := runHelm(t, append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Documents(out)
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, doc := range docs {
		obj, err := d.Decode(doc)
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, doc)
		}
		objs = append(objs, obj)
		// The sidecar's patch is a Deployment too: decoded as one.
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Data["patch.yaml"] != "" {
			patch, err := d.Decode([]byte(cm.Data["patch.yaml"]))
			if err != nil {
				t.Fatalf("%s: the ConfigMap %s's patch: %v", f, cm.Name, err)
			}
			objs = append(objs, patch)
		}
	}
	return objs
}

func newDecoder(t *testing.T) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestChart lints and renders the chart with the default values and each
// documented variation, decodes every document strictly and checks what
// the chart's README promises of them.
func TestChart(t *testing.T) {
	d := newDecoder(t)
	for _, f := range valueFiles(t) {
		name := strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		if f == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir}
			if f != "" {
				args = append(args, "-f", f)
			}
			if _, err := runHelm(t, args...); err != nil {
				t.Fatal(err)
			}
			objs := render(t, d, f)
			kinds := map[string]int{}
			for _, obj := range objs {
				kinds[obj.GetObjectKind().GroupVersionKind().Kind]++
				checkObject(t, obj)
			}
			t.Logf("%d documents: %v", len(objs), kinds)
			if kinds["Deployment"] == 0 {
				t.Error("no Deployment and no sidecar patch rendered")
			}
		})
	}
}

// checkObject checks one rendered object against the chart's promises.
func checkObject(t *testing.T, obj runtime.Object) {
	t.Helper()
	switch o := obj.(type) {
	case *appsv1.Deployment:
		checkPod(t, o.Name, &o.Spec.Template.Spec, o.Spec.Template.Labels["app.kubernetes.io/component"] == "rabbitmq")
	case *batchv1.Job:
		checkPod(t, o.Name, &o.Spec.Template.Spec, false)
	case *corev1.Secret:
		// The only Secret the chart makes is the try-out broker's, of
		// generated passwords.
		if o.Labels["app.kubernetes.io/component"] != "rabbitmq" {
			t.Errorf("Secret %s: the chart makes no Secret but the try-out broker's", o.Name)
		}
		for k, v := range o.StringData {
			if strings.HasSuffix(k, "-password") && len(v) != 32 {
				t.Errorf("Secret %s: %s is not a generated password of 32 characters", o.Name, k)
			}
		}
	case *monitoringv1.ServiceMonitor:
		// The alerting rules select the daemons' targets as job="daemon"
		// (FpmqDaemonNotReady's up{job="daemon"}), compose's name.
		for _, e := range o.Spec.Endpoints {
			if !slices.ContainsFunc(e.RelabelConfigs, func(r monitoringv1.RelabelConfig) bool {
				return r.TargetLabel == "job" && r.Replacement != nil && *r.Replacement == "daemon" && len(r.SourceLabels) == 0
			}) {
				t.Errorf("ServiceMonitor %s: endpoint %s does not name its targets job=\"daemon\", which the alerting rules select", o.Name, e.Port)
			}
		}
	case *monitoringv1.PrometheusRule:
		if n := len(o.Spec.Groups); n == 0 || len(o.Spec.Groups[0].Rules) < 5 {
			t.Errorf("PrometheusRule %s: %d groups, want docker/prometheus/alerts.yml's", o.Name, n)
		}
	case *ScaledObject:
		if o.Spec.MinReplicaCount == nil || o.Spec.MaxReplicaCount == nil || *o.Spec.MaxReplicaCount < 1 {
			t.Errorf("ScaledObject %s: replica counts %v..%v", o.Name, o.Spec.MinReplicaCount, o.Spec.MaxReplicaCount)
		}
	}
}

// checkPod checks a pod template: hardened containers, and for a route's
// pod the daemon beside php-fpm with the socket, probes, drain hook and a
// grace period longer than a run.
func checkPod(t *testing.T, name string, spec *corev1.PodSpec, broker bool) {
	t.Helper()
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Image == "" {
			// The sidecar patch's entry for the application's own
			// php-fpm container, whose security settings stay its own.
			continue
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s/%s: not hardened (no privilege escalation, every capability dropped): %+v", name, c.Name, sc)
			continue
		}
		// The try-out broker's image runs as a named user and writes to
		// its own directories: it is exempt from these two alone.
		if !broker && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem) {
			t.Errorf("%s/%s: not non-root with a read-only root: %+v", name, c.Name, sc)
		}
		for _, e := range c.Env {
			if e.Name == "AMQP_URL" && e.ValueFrom == nil && strings.Contains(e.Value, "@") {
				t.Errorf("%s/%s: AMQP_URL holds credentials in the manifest: %q", name, c.Name, e.Value)
			}
			if e.Name == "AMQP_PASSWORD" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s/%s: AMQP_PASSWORD is not read from a Secret", name, c.Name)
			}
		}
	}
	daemon := container(spec, "daemon")
	if daemon == nil {
		return
	}
	env := envMap(daemon)
	if daemon.LivenessProbe == nil || daemon.LivenessProbe.Exec == nil ||
		!slices.Equal(daemon.LivenessProbe.Exec.Command, []string{"/daemon", "healthcheck", "live"}) {
		t.Errorf("%s: the daemon's liveness probe is not daemon healthcheck live", name)
	}
	if daemon.ReadinessProbe == nil || daemon.ReadinessProbe.Exec == nil ||
		!slices.Equal(daemon.ReadinessProbe.Exec.Command, []string{"/daemon", "healthcheck", "ready"}) {
		t.Errorf("%s: the daemon's readiness probe is not daemon healthcheck ready", name)
	}
	for _, k := range []string{"AMQP_QUEUE", "SCRIPT_FILENAME", "CONCURRENCY", "REQUEST_TIMEOUT", "SHUTDOWN_TIMEOUT", "MAX_ATTEMPTS", "FASTCGI_ADDR"} {
		if env[k] == "" {
			t.Errorf("%s: the daemon has no %s", name, k)
		}
	}
	run, err1 := time.ParseDuration(env["REQUEST_TIMEOUT"])
	stop, err2 := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: REQUEST_TIMEOUT %q, SHUTDOWN_TIMEOUT %q: %v %v", name, env["REQUEST_TIMEOUT"], env["SHUTDOWN_TIMEOUT"], err1, err2)
	}
	if spec.TerminationGracePeriodSeconds == nil ||
		time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second <= max(run, stop) {
		t.Errorf("%s: terminationGracePeriodSeconds %v is not longer than REQUEST_TIMEOUT %v and SHUTDOWN_TIMEOUT %v", name, spec.TerminationGracePeriodSeconds, run, stop)
	}
	// php-fpm: the container that is not the daemon.
	var php *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name != "daemon" {
			php = &spec.Containers[i]
		}
	}
	if php == nil {
		t.Fatalf("%s: no php-fpm container beside the daemon", name)
	}
	phpEnv := envMap(php)
	children, _ := strconv.Atoi(phpEnv["FPM_MAX_CHILDREN"])
	concurrency, _ := strconv.Atoi(env["CONCURRENCY"])
	if children < concurrency || concurrency < 1 {
		t.Errorf("%s: pool of %d children for CONCURRENCY %d", name, children, concurrency)
	}
	if phpEnv["FPM_REQUEST_TERMINATE_TIMEOUT"] != fmt.Sprintf("%.0fs", run.Seconds()) {
		t.Errorf("%s: FPM_REQUEST_TERMINATE_TIMEOUT %q is not REQUEST_TIMEOUT %v", name, phpEnv["FPM_REQUEST_TERMINATE_TIMEOUT"], run)
	}
	if "unix://"+phpEnv["FPM_LISTEN"] != env["FASTCGI_ADDR"] {
		t.Errorf("%s: php-fpm listens on %q, the daemon asks %q", name, phpEnv["FPM_LISTEN"], env["FASTCGI_ADDR"])
	}
	socketDir := filepath.Dir(phpEnv["FPM_LISTEN"])
	if mountOf(daemon, socketDir) == "" || mountOf(daemon, socketDir) != mountOf(php, socketDir) {
		t.Errorf("%s: the daemon and php-fpm do not share a volume on %s", name, socketDir)
	}
	if v := volume(spec, mountOf(daemon, socketDir)); v == nil || v.EmptyDir == nil {
		t.Errorf("%s: the socket's volume is not an emptyDir", name)
	}
	if php.Lifecycle == nil || php.Lifecycle.PreStop == nil || php.Lifecycle.PreStop.Exec == nil {
		t.Errorf("%s: php-fpm has no preStop hook waiting for the daemon", name)
	}
}

func container(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

func envMap(c *corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
		if e.ValueFrom != nil {
			m[e.Name] = "(from " + e.ValueFrom.String() + ")"
		}
	}
	return m
}

// mountOf returns the name of the volume c mounts on path.
func mountOf(c *corev1.Container, path string) string {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m.Name
		}
	}
	return ""
}

func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// TestTryoutPasswords checks that the try-out broker's passwords are made
// at render time, not shipped: two renders give different ones.
func TestTryoutPasswords(t *testing.T) {
	d := newDecoder(t)
	f := filepath.Join(chartDir, "ci", "tryout-values.yaml")
	secret := func() map[string]string {
		for _, obj := range render(t, d, f) {
			if s, ok := obj.(*corev1.Secret); ok {
				return s.StringData
			}
		}
		t.Fatal("no Secret rendered for the try-out broker")
		return nil
	}
	a, b := secret(), secret()
	for k, v := range a {
		if strings.HasSuffix(k, "-password") && v == b[k] {
			t.Errorf("%s is the same in two renders: not generated", k)
		}
	}
}

// TestChartRefuses checks that values which cannot work stop the render
// with a message naming them.
func TestChartRefuses(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"grace shorter than a run", []string{"routeDefaults.terminationGracePeriodSeconds=30"}, "terminationGracePeriodSeconds"},
		{"pool smaller than concurrency", []string{"routeDefaults.poolSize=3"}, "poolSize"},
		{"keda and hpa", []string{"routeDefaults.keda.enabled=true", "routeDefaults.hpa.enabled=true"}, "not both"},
		{"no secret", []string{"rabbitmq.existingSecret.name="}, "rabbitmq.existingSecret.name"},
		{"unknown source", []string{"rabbitmq.source=guest"}, "rabbitmq.source"},
		{"bad route name", []string{"routes.Big_Route.script=/app/x.php"}, "lowercase"},
		{"message rate without a value", []string{"routeDefaults.keda.enabled=true", "routeDefaults.keda.mode=MessageRate", "routeDefaults.keda.management.secret=m"}, "keda.value"},
		{"message rate over AMQP", []string{"routeDefaults.keda.enabled=true", "routeDefaults.keda.mode=MessageRate", "routeDefaults.keda.value=0.4"}, "keda.management.secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", "rel", chartDir}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			_, err := runHelm(t, args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template --set %v: %v, want an error naming %q", tt.set, err, tt.want)
			}
		})
	}
}

// TestAlertsCopy checks that the chart's alerting rules are
// docker/prometheus/alerts.yml's, which promtool's tests cover.
func TestAlertsCopy(t *testing.T) {
	want, err := os.ReadFile("../../prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("docker/helm/fpmq/files/alerts.yml differs from docker/prometheus/alerts.yml: cp docker/prometheus/alerts.yml docker/helm/fpmq/files/alerts.yml")
	}
}
