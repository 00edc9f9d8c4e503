package check

import (
	"strings"
	"testing"
)

const goodDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ok
spec:
  replicas: 2
  selector:
    matchLabels: {app: ok}
  template:
    metadata:
      labels: {app: ok}
    spec:
      containers:
        - name: daemon
          image: fpmq/daemon:dev
          imagePullPolicy: Never
`

const goodScaledObject = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: ok
spec:
  scaleTargetRef:
    name: ok
  minReplicaCount: 0
  maxReplicaCount: 3
  triggers:
    - type: rabbitmq
      metadata:
        queueName: commands
        mode: QueueLength
        value: "10"
`

const goodServiceMonitor = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: ok
spec:
  selector:
    matchLabels: {app: ok}
  endpoints:
    - port: metrics
      interval: 15s
`

// TestDecoder checks that the decoder accepts good manifests and refuses
// broken ones of every kind the chart renders: otherwise TestChart could
// not fail.
func TestDecoder(t *testing.T) {
	d := newDecoder(t)
	tests := []struct {
		name, doc, wantErr string // wantErr "" means accepted
	}{
		{"deployment", goodDeployment, ""},
		{"scaled object", goodScaledObject, ""},
		{"service monitor", goodServiceMonitor, ""},
		{"unknown field", strings.Replace(goodDeployment, "imagePullPolicy", "imagePullPolicyy", 1), "unknown field"},
		{"wrong type", strings.Replace(goodDeployment, "replicas: 2", "replicas: two", 1), "replicas"},
		{"misplaced field", strings.Replace(goodDeployment, "  replicas: 2", "  terminationGracePeriodSeconds: 75", 1), "unknown field"},
		{"duplicate field", strings.Replace(goodDeployment, "  replicas: 2", "  replicas: 2\n  replicas: 3", 1), "replicas"},
		{"unknown kind", strings.Replace(goodDeployment, "kind: Deployment", "kind: Deploy", 1), "no kind"},
		{"wrong version", strings.Replace(goodDeployment, "apps/v1", "apps/v2", 1), "apps/v2"},
		{"scaled object unknown field", strings.Replace(goodScaledObject, "minReplicaCount", "minReplicas", 1), "unknown field"},
		{"scaled object wrong type", strings.Replace(goodScaledObject, "maxReplicaCount: 3", "maxReplicaCount: many", 1), "maxReplicaCount"},
		{"rabbitmq trigger unknown metadata", strings.Replace(goodScaledObject, "queueName", "queue", 1), "metadata"},
		{"rabbitmq trigger bad mode", strings.Replace(goodScaledObject, "QueueLength", "Length", 1), "mode"},
		{"unknown KEDA kind", strings.Replace(goodScaledObject, "ScaledObject", "ScaledThing", 1), "ScaledThing"},
		{"service monitor unknown field", strings.Replace(goodServiceMonitor, "interval", "every", 1), "unknown field"},
		{"service monitor wrong type", strings.Replace(goodServiceMonitor, "endpoints:", "endpoints: 3\n  x:", 1), "endpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Decode([]byte(tt.doc))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("accepted, want an error naming %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not name %q", err, tt.wantErr)
			}
		})
	}
}

// TestDocuments checks the splitting of a rendered stream: documents of
// comments alone are left out.
func TestDocuments(t *testing.T) {
	docs, err := Documents([]byte("---\n# Source: x\n---\n" + goodDeployment + "---\n" + goodServiceMonitor))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2", len(docs))
	}
}
