// Package check decodes the manifests that fpmq's Helm chart renders
// strictly against the Go types of the APIs they are for: Kubernetes'
// own (client-go's scheme), the Prometheus Operator's and KEDA's. An
// unknown field, a wrong type, an unknown kind or a duplicated field is
// an error, as the API server would make it one.
package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// Decoder decodes manifests strictly.
type Decoder struct {
	universal runtime.Decoder
}

// NewDecoder returns a Decoder that knows Kubernetes' built-in kinds, the
// Prometheus Operator's and KEDA's.
func NewDecoder() (*Decoder, error) {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("kubernetes scheme: %w", err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("monitoring scheme: %w", err)
	}
	return &Decoder{universal: serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()}, nil
}

// Decode decodes one manifest into its Go type. KEDA's kinds go to the
// mirror types of keda.go; every other kind to its registered type.
func (d *Decoder) Decode(doc []byte) (runtime.Object, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	if meta.APIVersion == kedaAPIVersion {
		return decodeKEDA(meta.Kind, doc)
	}
	obj, _, err := d.universal.Decode(doc, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", meta.APIVersion, meta.Kind, err)
	}
	return obj, nil
}

// Documents splits a multi-document YAML stream, leaving out documents
// with nothing but comments in them.
func Documents(stream []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split documents: %w", err)
		}
		var probe any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, fmt.Errorf("parse document: %w", err)
		}
		if probe != nil {
			docs = append(docs, doc)
		}
	}
}
