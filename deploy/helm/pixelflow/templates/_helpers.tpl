{{/* Names ---------------------------------------------------------------------------------- */}}
{{- define "pixelflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pixelflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's resource name: (list $ "auth") -> <fullname>-auth */}}
{{- define "pixelflow.component" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "pixelflow.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "pixelflow.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: pixelflow
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
{{ include "pixelflow.selectorLabels" . }}
{{- end }}

{{- define "pixelflow.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "pixelflow.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "pixelflow.image" -}}
{{- $root := index . 0 }}
{{- $name := index $root.Values.image.names (index . 1) }}
{{- $tag := default $root.Chart.AppVersion $root.Values.image.tag }}
{{- if $root.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" $root.Values.image.registry) $name $tag }}
{{- else }}
{{- printf "%s:%s" $name $tag }}
{{- end }}
{{- end }}

{{/* The headless Service of a gRPC component, as a DNS name every pod can resolve. */}}
{{- define "pixelflow.host" -}}
{{- $root := index . 0 }}
{{- printf "%s.%s.svc.%s" (include "pixelflow.component" .) $root.Release.Namespace $root.Values.clusterDomain }}
{{- end }}

{{- define "pixelflow.secretName" -}}
{{- default (include "pixelflow.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Termination grace per service: how long its drain can take, plus a margin.
  auth_svc:   the gRPC server's stop (grace).
  api_svc:    the gRPC server's stop (grace), then the producer's flush of what is in flight
              (PIXELFLOW_KAFKA_DELIVERY_TIMEOUT_MS + 1 s, api_svc/__main__.py).
  worker_svc: the gRPC server's stop (grace), then the consumer's stop, which lets running
              tasks finish for grace again, then the image pool's join (5 s, worker_svc/__main__.py).
  The margin covers closing clients after that. */}}
{{- define "pixelflow.drainMargin" -}}5{{- end }}

{{- define "pixelflow.terminationGrace.auth" -}}
{{- add (int .Values.settings.shutdownGraceSeconds) (include "pixelflow.drainMargin" .) }}
{{- end }}

{{- define "pixelflow.kafkaDeliveryTimeoutMs" -}}
{{- default "3000" (index .Values.settings.extra.api "PIXELFLOW_KAFKA_DELIVERY_TIMEOUT_MS") }}
{{- end }}

{{- define "pixelflow.terminationGrace.api" -}}
{{- $flush := add (div (int (include "pixelflow.kafkaDeliveryTimeoutMs" .)) 1000) 2 }}
{{- add (int .Values.settings.shutdownGraceSeconds) $flush (include "pixelflow.drainMargin" .) }}
{{- end }}

{{- define "pixelflow.terminationGrace.worker" -}}
{{- add (mul 2 (int .Values.settings.shutdownGraceSeconds)) 5 (include "pixelflow.drainMargin" .) }}
{{- end }}

{{/* Checks that make a wrong release fail at `helm template`/`install` time. */}}
{{- define "pixelflow.validate" -}}
{{- $autoscaling := .Values.worker.autoscaling }}
{{- $partitions := int .Values.kafka.imageTasksPartitions }}
{{- if gt (int $autoscaling.maxReplicas) $partitions }}
{{- fail (printf "worker.autoscaling.maxReplicas (%d) is above kafka.imageTasksPartitions (%d): a worker beyond the partition count gets no partition" (int $autoscaling.maxReplicas) $partitions) }}
{{- end }}
{{- if and (not $autoscaling.enabled) (gt (int .Values.worker.replicas) $partitions) }}
{{- fail (printf "worker.replicas (%d) is above kafka.imageTasksPartitions (%d): a worker beyond the partition count gets no partition" (int .Values.worker.replicas) $partitions) }}
{{- end }}
{{- if gt (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas) }}
{{- fail "worker.autoscaling.minReplicas is above worker.autoscaling.maxReplicas" }}
{{- end }}
{{- if not (has .Values.blobStore.backend (list "filesystem" "s3")) }}
{{- fail (printf "blobStore.backend must be filesystem or s3, not %q" .Values.blobStore.backend) }}
{{- end }}
{{- $budget := int64 .Values.worker.memoryBudgetBytes }}
{{- if and $budget .Values.worker.resources.limits.memory }}
{{- /* Only plain Mi/Gi limits are compared here; the tests check the rendered numbers. */}}
{{- $limit := .Values.worker.resources.limits.memory | toString }}
{{- $bytes := 0 }}
{{- if hasSuffix "Gi" $limit }}{{ $bytes = mul (trimSuffix "Gi" $limit | int64) 1073741824 }}{{ end }}
{{- if hasSuffix "Mi" $limit }}{{ $bytes = mul (trimSuffix "Mi" $limit | int64) 1048576 }}{{ end }}
{{- if and $bytes (ge $budget (int64 $bytes)) }}
{{- fail (printf "worker.memoryBudgetBytes (%d) must be below worker.resources.limits.memory (%s): the image pool would be killed before it shrinks" $budget $limit) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod security: the Python images run as uid 10001 (the Dockerfile's pixelflow user). */}}
{{- define "pixelflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "pixelflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{- define "pixelflow.secretEnv" -}}
{{- $root := index . 0 -}}
{{- range $key := index . 1 }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "pixelflow.secretName" $root }}
      key: {{ $key }}
{{- end }}
{{- end }}

{{/* A pod's scheduling fields from a component's values. */}}
{{- define "pixelflow.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Ports inside the pods: the `make run` defaults (infra.stack.StackPorts), which the Envoy
  config in files/envoy.json routes to (gateway.compose.UPSTREAMS) and the images EXPOSE. Not
  values: changing one here would not change Envoy's. */}}
{{/* Each Python service's Prometheus /metrics port (PIXELFLOW_<SERVICE>_METRICS_PORT's default). */}}
{{- define "pixelflow.metricsPort" -}}
{{- index (dict "auth" "9451" "api" "9452" "worker" "9453") (index . 1) }}
{{- end }}

{{/* Where Prometheus finds a pod's /metrics (the common prometheus.io annotations). */}}
{{- define "pixelflow.metricsAnnotations" -}}
{{- $root := index . 0 }}
{{- if $root.Values.metrics.annotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "pixelflow.metricsPort" . | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{- define "pixelflow.port" -}}
{{- index (dict "auth" "50051" "api" "50052" "worker" "50053" "gateway" "8080" "envoyAdmin" "9901" "ui" "3000") (index . 1) }}
{{- end }}

{{/* The gRPC probes of a Python service (grpc.health.v1, the overall "" service). */}}
{{- define "pixelflow.grpcProbes" -}}
startupProbe:
  grpc:
    port: {{ . }}
  periodSeconds: 2
  timeoutSeconds: 3
  failureThreshold: 60
readinessProbe:
  grpc:
    port: {{ . }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}

{{/* The blob store's volume (filesystem backend) and its mount, for api_svc and the workers. */}}
{{- define "pixelflow.blobVolume" -}}
{{- if eq .Values.blobStore.backend "filesystem" }}
- name: blobs
  persistentVolumeClaim:
    claimName: {{ default (include "pixelflow.component" (list . "blobs")) .Values.blobStore.filesystem.existingClaim }}
{{- end }}
{{- end }}

{{- define "pixelflow.blobMount" -}}
{{- if eq .Values.blobStore.backend "filesystem" }}
- name: blobs
  mountPath: /data/blobs
{{- end }}
{{- end }}

{{/* Secret keys api_svc and the workers read. */}}
{{- define "pixelflow.blobSecretKeys" -}}
{{- if eq .Values.blobStore.backend "s3" }}PIXELFLOW_S3_ACCESS_KEY_ID,PIXELFLOW_S3_SECRET_ACCESS_KEY{{ end }}
{{- end }}

{{/* A setting's value as the text of an environment variable: whole numbers from a values
  file (floats after YAML) without an exponent, so 10737418240 stays 10737418240. */}}
{{- define "pixelflow.settingValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . | toString | quote }}
{{- else }}
{{- toString . | quote }}
{{- end }}
{{- end }}
