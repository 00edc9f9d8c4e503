{{/* The release's prefix for every object's name. */}}
{{- define "fpmq.fullname" -}}
{{- if contains "fpmq" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-fpmq" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fpmq.labels" -}}
app.kubernetes.io/name: fpmq
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
Selector labels of a route's pods: (dict "root" $ "route" $r). A sidecar
route's pods are the application's, whose own app.kubernetes.io labels
stay untouched: they get one label of fpmq's.
*/}}
{{- define "fpmq.selector" -}}
{{- if .route.sidecar.deployment -}}
fpmq/route: {{ .route.fullname }}
{{- else -}}
app.kubernetes.io/name: fpmq
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .route.name }}
{{- end -}}
{{- end -}}

{{/*
fpmq.merge merges over into base recursively and returns JSON: unlike
sprig's mergeOverwrite, a false, 0 or "" in over wins.
*/}}
{{- define "fpmq.merge" -}}
{{- $out := deepCopy .base -}}
{{- range $k, $v := .over -}}
{{- if and (kindIs "map" $v) (kindIs "map" (index $out $k)) -}}
{{- $_ := set $out $k (include "fpmq.merge" (dict "base" (index $out $k) "over" $v) | fromJson) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
fpmq.routes returns, as JSON, every route with routeDefaults applied and
its derived values: name, queue, poolSize, grace (seconds) and the
objects' name. It fails on values that cannot work.
*/}}
{{- define "fpmq.routes" -}}
{{- $root := . -}}
{{- $out := dict -}}
{{- if not .Values.routes -}}
{{- fail "routes: name at least one route" -}}
{{- end -}}
{{- range $name, $over := .Values.routes -}}
{{- if not (regexMatch "^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$" $name) -}}
{{- fail (printf "routes.%s: a route's name must be a lowercase DNS label of at most 32 characters" $name) -}}
{{- end -}}
{{- $r := include "fpmq.merge" (dict "base" $root.Values.routeDefaults "over" ($over | default dict)) | fromJson -}}
{{- $_ := set $r "name" $name -}}
{{- $_ := set $r "fullname" (printf "%s-%s" (include "fpmq.fullname" $root) $name) -}}
{{- if not $r.queue -}}{{- $_ := set $r "queue" $name -}}{{- end -}}
{{- if lt (int $r.concurrency) 1 -}}
{{- fail (printf "routes.%s.concurrency must be at least 1" $name) -}}
{{- end -}}
{{- if not (int $r.poolSize) -}}{{- $_ := set $r "poolSize" (add 1 (int $r.concurrency)) -}}{{- end -}}
{{- if lt (int $r.poolSize) (int $r.concurrency) -}}
{{- fail (printf "routes.%s.poolSize (%d) must be at least concurrency (%d): the daemon runs that many jobs at once on the pool" $name (int $r.poolSize) (int $r.concurrency)) -}}
{{- end -}}
{{- $grace := int $r.terminationGracePeriodSeconds -}}
{{- if not $grace -}}
{{- $grace = add (max (int $r.requestTimeoutSeconds) (int $r.shutdownTimeoutSeconds)) (int $r.graceMarginSeconds) -}}
{{- end -}}
{{- if le (int $grace) (int $r.requestTimeoutSeconds) -}}
{{- fail (printf "routes.%s.terminationGracePeriodSeconds (%d) must be longer than requestTimeoutSeconds (%d): a pod killed before its running jobs end leaves them to run again while they still run" $name (int $grace) (int $r.requestTimeoutSeconds)) -}}
{{- end -}}
{{- $_ := set $r "grace" $grace -}}
{{- if and $r.keda.enabled $r.hpa.enabled -}}
{{- fail (printf "routes.%s: enable keda or hpa, not both: they would fight over the replicas" $name) -}}
{{- end -}}
{{- if and $r.keda.enabled (eq $r.keda.mode "MessageRate") (not $r.keda.value) -}}
{{- fail (printf "routes.%s.keda.value: give the jobs/s one pod runs (concurrency / seconds per job) for MessageRate" $name) -}}
{{- end -}}
{{- if and $r.keda.enabled (eq $r.keda.mode "MessageRate") (not $r.keda.management.secret) -}}
{{- fail (printf "routes.%s.keda: mode MessageRate needs keda.management.secret: KEDA reads message rates from RabbitMQ's management API only" $name) -}}
{{- end -}}
{{- if not (has $r.keda.mode (list "QueueLength" "MessageRate")) -}}
{{- fail (printf "routes.%s.keda.mode must be QueueLength or MessageRate" $name) -}}
{{- end -}}
{{- $_ := set $out $name $r -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The try-out broker's objects' name and its generated Secret's. */}}
{{- define "fpmq.broker" -}}
{{- printf "%s-rabbitmq" (include "fpmq.fullname" .) -}}
{{- end -}}

{{/*
fpmq.amqpEnv is the daemon's AMQP_URL (and what it is made of) as env
entries, from rabbitmq.source.
*/}}
{{- define "fpmq.amqpEnv" -}}
{{- $rmq := .Values.rabbitmq -}}
{{- if eq $rmq.source "existingSecret" -}}
{{- if not $rmq.existingSecret.name -}}
{{- fail "rabbitmq.existingSecret.name: name the Secret holding the daemon's AMQP_URL (or set rabbitmq.source to cluster or tryout)" -}}
{{- end }}
- name: AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ $rmq.existingSecret.name }}
      key: {{ $rmq.existingSecret.key }}
{{- else if eq $rmq.source "cluster" -}}
{{- if or (not $rmq.cluster.name) (not $rmq.cluster.credentialsSecret) -}}
{{- fail "rabbitmq.cluster.name and rabbitmq.cluster.credentialsSecret: name the RabbitmqCluster and the Secret of the daemon's user" -}}
{{- end }}
{{- /* The credentials in variables of their own: the URL would need them percent-encoded. */}}
- name: AMQP_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $rmq.cluster.credentialsSecret }}
      key: {{ $rmq.cluster.usernameKey }}
- name: AMQP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $rmq.cluster.credentialsSecret }}
      key: {{ $rmq.cluster.passwordKey }}
- name: AMQP_URL
  value: {{ printf "amqp://%s:5672/%s" (include "fpmq.clusterHost" .) $rmq.vhost | quote }}
{{- else if eq $rmq.source "tryout" }}
- name: AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "fpmq.broker" . }}
      key: daemon-url
{{- else -}}
{{- fail (printf "rabbitmq.source must be existingSecret, cluster or tryout, not %q" $rmq.source) -}}
{{- end -}}
{{- end -}}

{{/* The RabbitmqCluster's Service: the operator names it after the cluster. */}}
{{- define "fpmq.clusterHost" -}}
{{- printf "%s.%s.svc" .Values.rabbitmq.cluster.name (.Values.rabbitmq.cluster.namespace | default .Release.Namespace) -}}
{{- end -}}

{{/* The restricted security context of every fpmq container. */}}
{{- define "fpmq.hardened" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
fpmq.daemonContainer is the daemon's container of a route:
(dict "root" $ "route" $r). Its env follows compose.yaml's daemon service.
*/}}
{{- define "fpmq.daemonContainer" -}}
{{- $root := .root -}}
{{- $r := .route -}}
{{- $d := $root.Values.daemon -}}
- name: daemon
  image: {{ printf "%s:%s" $root.Values.daemonImage.repository $root.Values.daemonImage.tag | quote }}
  imagePullPolicy: {{ $root.Values.daemonImage.pullPolicy }}
  env:
    {{- include "fpmq.amqpEnv" $root | trim | nindent 4 }}
    {{- with $root.Values.rabbitmq.managementUrl }}
    - name: RABBITMQ_MANAGEMENT_URL
      value: {{ . | quote }}
    {{- end }}
    - name: AMQP_QUEUE
      value: {{ $r.queue | quote }}
    - name: AMQP_QUEUE_TYPE
      value: {{ $root.Values.rabbitmq.queueType | quote }}
    - name: AMQP_MAX_PRIORITY
      value: {{ $root.Values.rabbitmq.maxPriority | quote }}
    - name: DELAY_MAX
      value: {{ $root.Values.rabbitmq.delayMax | quote }}
    - name: FASTCGI_ADDR
      value: {{ printf "unix://%s/pool.sock" $root.Values.socketDir | quote }}
    - name: SCRIPT_FILENAME
      value: {{ $r.script | quote }}
    - name: CONCURRENCY
      value: {{ int $r.concurrency | quote }}
    - name: REQUEST_TIMEOUT
      value: {{ printf "%ds" (int $r.requestTimeoutSeconds) | quote }}
    - name: SHUTDOWN_TIMEOUT
      value: {{ printf "%ds" (int $r.shutdownTimeoutSeconds) | quote }}
    - name: MAX_ATTEMPTS
      value: {{ int $r.maxAttempts | quote }}
    - name: FASTCGI_KEEPALIVE
      value: {{ $d.fastcgiKeepalive | quote }}
    - name: METRICS_ADDR
      value: {{ printf ":%d" (int $root.Values.metrics.port) | quote }}
    - name: LOG_LEVEL
      value: {{ $d.logLevel | quote }}
    - name: LOG_FORMAT
      value: json
    - name: GOMAXPROCS
      value: {{ int $d.gomaxprocs | quote }}
    {{- with $d.adminTokenSecret.name }}
    - name: ADMIN_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ . }}
          key: {{ $d.adminTokenSecret.key }}
    {{- end }}
    {{- range $k, $v := (include "fpmq.merge" (dict "base" $d.env "over" $r.env) | fromJson) }}
    - name: {{ $k }}
      value: {{ $v | toString | quote }}
    {{- end }}
  ports:
    - name: metrics
      containerPort: {{ int $root.Values.metrics.port }}
  # The daemon's own checks (daemon healthcheck): live while its process
  # serves; ready while php-fpm and the broker answer and no operator
  # paused it (daemon pause).
  livenessProbe:
    exec:
      command: [/daemon, healthcheck, live]
    periodSeconds: {{ $d.probes.periodSeconds }}
    timeoutSeconds: {{ $d.probes.timeoutSeconds }}
    failureThreshold: {{ $d.probes.failureThreshold }}
  readinessProbe:
    exec:
      command: [/daemon, healthcheck, ready]
    periodSeconds: {{ $d.probes.periodSeconds }}
    timeoutSeconds: {{ $d.probes.timeoutSeconds }}
    failureThreshold: {{ $d.probes.failureThreshold }}
  resources:
    {{- toYaml $d.resources | nindent 4 }}
  securityContext:
    {{- include "fpmq.hardened" $root | nindent 4 }}
    runAsUser: 10001
    runAsGroup: 10001
  volumeMounts:
    - name: fpm-socket
      mountPath: {{ $root.Values.socketDir }}
{{- end -}}

{{/*
fpmq.phpAdditions is what the php-fpm container of a route gets from the
chart, in the Deployment and in the sidecar patch alike: the pool's env,
the socket's volume and the drain hook. (dict "root" $ "route" $r)
*/}}
{{- define "fpmq.phpAdditions" -}}
{{- $root := .root -}}
{{- $r := .route -}}
env:
  - name: FPM_LISTEN
    value: {{ printf "%s/pool.sock" $root.Values.socketDir | quote }}
  - name: FPM_MAX_CHILDREN
    value: {{ int $r.poolSize | quote }}
  - name: FPM_REQUEST_TERMINATE_TIMEOUT
    value: {{ printf "%ds" (int $r.requestTimeoutSeconds) | quote }}
  {{- range $k, $v := (include "fpmq.merge" (dict "base" $root.Values.php.env "over" $r.phpEnv) | fromJson) }}
  - name: {{ $k }}
    value: {{ $v | toString | quote }}
  {{- end }}
{{- if $root.Values.php.drainHook }}
# php-fpm stops only once the daemon has: its graceful stop (SIGQUIT)
# would kill children still running after process_control_timeout, and
# SIGTERM kills them at once.
lifecycle:
  preStop:
    exec:
      command:
        - php
        - -r
        - {{ printf "while (($s = @fsockopen('127.0.0.1', %d)) !== false) { fclose($s); sleep(1); }" (int $root.Values.metrics.port) | quote }}
{{- end }}
{{- end -}}
