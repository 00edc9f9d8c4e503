package check

import (
	"fmt"
	"strconv"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// KEDA's own Go module (github.com/kedacore/keda/v2) is not used: its
// newest release the module proxy serves (v2.21.1) needs Go 1.27, and an
// older one (v2.16.1) brings another Kubernetes release than client-go's
// and a dependency tree that did not build here within minutes. The types
// below mirror the fields of KEDA's v1alpha1 API that matter to a
// ScaledObject and a TriggerAuthentication, after
// apis/keda/v1alpha1/scaledobject_types.go and
// triggerauthentication_types.go of kedacore/keda v2.16 (field names and
// JSON names as there). Fields of KEDA's that the chart does not use are
// left out, so a manifest using them fails here: add them then.

const kedaAPIVersion = "keda.sh/v1alpha1"

// ScaledObject mirrors KEDA's ScaledObject.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec mirrors KEDA's ScaledObjectSpec.
type ScaledObjectSpec struct {
	ScaleTargetRef        *ScaleTarget    `json:"scaleTargetRef"`
	PollingInterval       *int32          `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32          `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32          `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32          `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32          `json:"maxReplicaCount,omitempty"`
	Advanced              *AdvancedConfig `json:"advanced,omitempty"`
	Triggers              []ScaleTriggers `json:"triggers"`
	Fallback              *ScaledFallback `json:"fallback,omitempty"`
}

// ScaleTarget mirrors KEDA's ScaleTarget.
type ScaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// AdvancedConfig mirrors KEDA's AdvancedConfig.
type AdvancedConfig struct {
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool                           `json:"restoreToOriginalReplicaCount,omitempty"`
}

// HorizontalPodAutoscalerConfig mirrors KEDA's HorizontalPodAutoscalerConfig.
type HorizontalPodAutoscalerConfig struct {
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	Name     string                                         `json:"name,omitempty"`
}

// ScaledFallback mirrors KEDA's Fallback.
type ScaledFallback struct {
	FailureThreshold int32 `json:"failureThreshold"`
	Replicas         int32 `json:"replicas"`
}

// ScaleTriggers mirrors KEDA's ScaleTriggers.
type ScaleTriggers struct {
	Type              string                         `json:"type"`
	Name              string                         `json:"name,omitempty"`
	UseCachedMetrics  bool                           `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string              `json:"metadata"`
	AuthenticationRef *AuthenticationRef             `json:"authenticationRef,omitempty"`
	MetricType        autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// AuthenticationRef mirrors KEDA's AuthenticationRef.
type AuthenticationRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// TriggerAuthentication mirrors KEDA's TriggerAuthentication.
type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TriggerAuthenticationSpec `json:"spec"`
}

// TriggerAuthenticationSpec mirrors the secret, config map and
// environment references of KEDA's TriggerAuthenticationSpec.
type TriggerAuthenticationSpec struct {
	SecretTargetRef    []AuthTargetRef       `json:"secretTargetRef,omitempty"`
	ConfigMapTargetRef []AuthTargetRef       `json:"configMapTargetRef,omitempty"`
	Env                []AuthEnvironment     `json:"env,omitempty"`
	PodIdentity        *AuthPodIdentity      `json:"podIdentity,omitempty"`
	HashiCorpVault     *runtime.RawExtension `json:"hashiCorpVault,omitempty"`
}

// AuthTargetRef mirrors KEDA's AuthSecretTargetRef and AuthConfigMapTargetRef.
type AuthTargetRef struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// AuthEnvironment mirrors KEDA's AuthEnvironment.
type AuthEnvironment struct {
	Parameter     string `json:"parameter"`
	Name          string `json:"name"`
	ContainerName string `json:"containerName,omitempty"`
}

// AuthPodIdentity mirrors KEDA's AuthPodIdentity.
type AuthPodIdentity struct {
	Provider string `json:"provider"`
}

// DeepCopyObject makes ScaledObject a runtime.Object (by a JSON round trip:
// these objects are only read).
func (o *ScaledObject) DeepCopyObject() runtime.Object { return deepCopy(o, &ScaledObject{}) }

// DeepCopyObject makes TriggerAuthentication a runtime.Object.
func (o *TriggerAuthentication) DeepCopyObject() runtime.Object {
	return deepCopy(o, &TriggerAuthentication{})
}

func deepCopy[T runtime.Object](from, to T) runtime.Object {
	b, err := yaml.Marshal(from)
	if err != nil {
		panic(err)
	}
	if err := yaml.Unmarshal(b, to); err != nil {
		panic(err)
	}
	return to
}

// rabbitmqMetadata is what KEDA's RabbitMQ scaler reads from a trigger's
// metadata (pkg/scalers/rabbitmq_scaler.go), besides the deprecated forms.
var rabbitmqMetadata = map[string]bool{
	"host": true, "hostFromEnv": true, "protocol": true, "queueName": true,
	"mode": true, "value": true, "activationValue": true, "vhostName": true,
	"useRegex": true, "excludeUnacknowledged": true, "pageSize": true,
	"operation": true, "timeout": true, "unsafeSsl": true,
}

// decodeKEDA decodes a KEDA object strictly into its mirror type and
// checks a RabbitMQ trigger's metadata as KEDA's scaler would.
func decodeKEDA(kind string, doc []byte) (runtime.Object, error) {
	var obj runtime.Object
	switch kind {
	case "ScaledObject":
		obj = &ScaledObject{}
	case "TriggerAuthentication":
		obj = &TriggerAuthentication{}
	default:
		return nil, fmt.Errorf("%s %s: not a kind of KEDA's this check knows", kedaAPIVersion, kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", kedaAPIVersion, kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: kind})
	so, ok := obj.(*ScaledObject)
	if !ok {
		return obj, nil
	}
	if so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name == "" {
		return nil, fmt.Errorf("ScaledObject %s: spec.scaleTargetRef.name is required", so.Name)
	}
	for _, t := range so.Spec.Triggers {
		if t.Type != "rabbitmq" {
			continue
		}
		for k := range t.Metadata {
			if !rabbitmqMetadata[k] {
				return nil, fmt.Errorf("ScaledObject %s: the rabbitmq trigger has no metadata %q", so.Name, k)
			}
		}
		if t.Metadata["queueName"] == "" {
			return nil, fmt.Errorf("ScaledObject %s: the rabbitmq trigger needs queueName", so.Name)
		}
		if m := t.Metadata["mode"]; m != "QueueLength" && m != "MessageRate" {
			return nil, fmt.Errorf("ScaledObject %s: the rabbitmq trigger's mode must be QueueLength or MessageRate, not %q", so.Name, m)
		}
		// KEDA's RabbitMQ scaler: "MessageRate" needs protocol http (the
		// management API); over AMQP it can count ready messages only.
		if t.Metadata["mode"] == "MessageRate" && t.Metadata["protocol"] != "http" {
			return nil, fmt.Errorf("ScaledObject %s: the rabbitmq trigger's mode MessageRate needs protocol http, not %q", so.Name, t.Metadata["protocol"])
		}
		if _, err := strconv.ParseFloat(t.Metadata["value"], 64); err != nil {
			return nil, fmt.Errorf("ScaledObject %s: the rabbitmq trigger's value: %w", so.Name, err)
		}
	}
	return obj, nil
}
