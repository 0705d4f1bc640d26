{{/* Names, labels and the pieces every service's pods share. */}}

{{- define "qbo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qbo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "qbo.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "qbo.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one part: (dict "root" $ "part" "ingress"). */}}
{{- define "qbo.partName" -}}
{{- printf "%s-%s" (include "qbo.fullname" .root) .part | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "qbo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: qbo-webhooks
{{ include "qbo.selectorLabels" . }}
{{- end -}}

{{- define "qbo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qbo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .part }}
{{- end -}}

{{- define "qbo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "qbo.secretName" -}}
{{- default (include "qbo.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "qbo.natsUrl" -}}
{{- if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else -}}
{{- printf "nats://%s:4222" (include "qbo.partName" (dict "root" . "part" "nats")) -}}
{{- end -}}
{{- end -}}

{{/* The QuickBooks API the processor and reconciler talk to: the in-cluster sandbox when it runs. */}}
{{- define "qbo.quickbooksEnv" -}}
- name: QBO_ENVIRONMENT
  value: {{ .Values.quickbooks.environment | quote }}
{{- if .Values.sandbox.enabled }}
- name: QBO_API_BASE_URL
  value: {{ printf "http://%s:8090" (include "qbo.partName" (dict "root" . "part" "sandbox")) | quote }}
{{- end }}
- name: QBO_CLIENT_ID
  valueFrom: { secretKeyRef: { name: {{ include "qbo.secretName" . }}, key: QBO_CLIENT_ID } }
- name: QBO_CLIENT_SECRET
  valueFrom: { secretKeyRef: { name: {{ include "qbo.secretName" . }}, key: QBO_CLIENT_SECRET } }
- name: TOKEN_ENCRYPTION_KEY
  valueFrom: { secretKeyRef: { name: {{ include "qbo.secretName" . }}, key: TOKEN_ENCRYPTION_KEY } }
{{- end -}}

{{/* A restricted pod security context (Pod Security Standards "restricted"). */}}
{{- define "qbo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "qbo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/*
Scheduling for one part's pods: the part's own settings, else the chart-wide ones under `pods`.
(dict "root" $ "part" "processor" "values" .Values.processor)
*/}}
{{- define "qbo.scheduling" -}}
{{- $pods := .root.Values.pods -}}
{{- with (default $pods.nodeSelector .values.nodeSelector) }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default $pods.tolerations .values.tolerations) }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default $pods.affinity .values.affinity) }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pods.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $pods.topologySpread }}
topologySpreadConstraints:
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels: {{- include "qbo.selectorLabels" $ | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}
