{{/* The release's name for every object: <release>-lethe unless the release is named lethe. */}}
{{- define "lethe.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lethe.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "lethe.labels" -}}
{{ include "lethe.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "lethe.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "lethe.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-env" (include "lethe.fullname" .)) -}}
{{- end -}}

{{/* What every Lethe container gets: the config file, the clusters, the secret, the exports volume. */}}
{{- define "lethe.env" -}}
env:
  - {name: LETHE_CONFIG, value: /etc/lethe/lethe.yaml}
  - {name: LETHE_TEMPORAL_HOSTPORT, value: {{ .Values.temporal.hostPort | quote }}}
  - {name: LETHE_TEMPORAL_NAMESPACE, value: {{ .Values.temporal.namespace | quote }}}
  - {name: LETHE_KAFKA_BROKERS, value: {{ join "," .Values.kafka.brokers | quote }}}
envFrom:
  - secretRef: {name: {{ include "lethe.secretName" . }}}
volumeMounts:
  - {name: config, mountPath: /etc/lethe, readOnly: true}
  - {name: exports, mountPath: /var/lib/lethe/exports}
  - {name: tmp, mountPath: /tmp}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{- define "lethe.volumes" -}}
volumes:
  - name: config
    configMap: {name: {{ include "lethe.fullname" . }}-config}
  - name: exports
    persistentVolumeClaim: {claimName: {{ .Values.exports.existingClaim | default (printf "%s-exports" (include "lethe.fullname" .)) }}}
  - name: tmp
    emptyDir: {}
{{- end -}}

{{/*
A Deployment for one part of Lethe. Arguments: root, component (its name), args (the lethe
command), part (its values: replicas, resources, autoscaling), port (the port its probes use:
http for serve, health for the rest).
*/}}
{{- define "lethe.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "lethe.fullname" $root }}-{{ .component }}
  labels:
    {{- include "lethe.labels" . | nindent 4 }}
spec:
  {{- if not .part.autoscaling.enabled }}
  replicas: {{ .part.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "lethe.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels:
        {{- include "lethe.selectorLabels" . | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if not $root.Values.existingSecret }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ if eq .port "http" }}"8080"{{ else }}"9090"{{ end }}
        prometheus.io/path: /metrics
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "lethe.fullname" $root }}
      automountServiceAccountToken: false
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      # Workflows finish their activity and Kafka consumers commit what they handled.
      terminationGracePeriodSeconds: 60
      initContainers:
        - name: wait-for-schema
          image: {{ include "lethe.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [migrate, --check]
          {{- include "lethe.env" $root | nindent 10 }}
          resources:
            {{- toYaml $root.Values.migrations.resources | nindent 12 }}
      containers:
        - name: {{ .component }}
          image: {{ include "lethe.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: {{ toJson .args }}
          {{- include "lethe.env" $root | nindent 10 }}
          ports:
            {{- if eq .port "http" }}
            - {name: http, containerPort: 8080, protocol: TCP}
            {{- else }}
            - {name: health, containerPort: 9090, protocol: TCP}
            {{- end }}
          # Liveness is the process alone; readiness includes PostgreSQL, Kafka and Temporal, so
          # a dependency outage takes pods out of service without restarting them.
          livenessProbe:
            httpGet: {path: /healthz, port: {{ .port }}}
            periodSeconds: 10
            failureThreshold: 6
          readinessProbe:
            httpGet: {path: /readyz, port: {{ .port }}}
            periodSeconds: 10
            timeoutSeconds: 6
            failureThreshold: 3
          startupProbe:
            httpGet: {path: /healthz, port: {{ .port }}}
            periodSeconds: 2
            failureThreshold: 60
          resources:
            {{- toYaml .part.resources | nindent 12 }}
      {{- include "lethe.volumes" $root | nindent 6 }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- if .part.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "lethe.fullname" $root }}-{{ .component }}
  labels:
    {{- include "lethe.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "lethe.fullname" $root }}-{{ .component }}
  minReplicas: {{ .part.autoscaling.minReplicas }}
  maxReplicas: {{ .part.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ .part.autoscaling.targetCPUUtilizationPercentage }}}
{{- end }}
{{- if or .part.autoscaling.enabled (gt (int .part.replicas) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "lethe.fullname" $root }}-{{ .component }}
  labels:
    {{- include "lethe.labels" . | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "lethe.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}
