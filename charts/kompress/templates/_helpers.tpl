{{/* Name of the chart, overridable. */}}
{{- define "kompress.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name. A release called "kompress" gives the same names
as `kubectl apply -k config/default` (kompress-controller-manager, ...).
*/}}
{{- define "kompress.fullname" -}}
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

{{- define "kompress.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "kompress.labels" -}}
helm.sh/chart: {{ include "kompress.chart" . }}
{{ include "kompress.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the manager's pods. */}}
{{- define "kompress.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kompress.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kompress.managerSelectorLabels" -}}
{{ include "kompress.selectorLabels" . }}
control-plane: controller-manager
{{- end }}

{{- define "kompress.managerName" -}}
{{- printf "%s-controller-manager" (include "kompress.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The manager's ServiceAccount. */}}
{{- define "kompress.managerServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kompress.managerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false: the manager's RBAC is bound to it" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ServiceAccount stage pods run as (--runner-service-account). */}}
{{- define "kompress.runnerServiceAccountName" -}}
{{- if .Values.runner.serviceAccount.create }}
{{- default (printf "%s-runner" (include "kompress.fullname" .) | trunc 63 | trimSuffix "-") .Values.runner.serviceAccount.name }}
{{- else }}
{{- required "runner.serviceAccount.name is required when runner.serviceAccount.create is false: stage pods need a ServiceAccount to run as" .Values.runner.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when a digest pins the image, else repository:tag. */}}
{{- define "kompress.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) }}
{{- end }}
{{- end }}

{{- define "kompress.managerImage" -}}
{{- include "kompress.image" (dict "image" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{- define "kompress.runnerImage" -}}
{{- include "kompress.image" (dict "image" .Values.runner.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/* The runner version in cache keys: the runner image's tag unless set. */}}
{{- define "kompress.runnerVersion" -}}
{{- .Values.runner.version | default .Values.runner.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "kompress.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/* "k=v,k2=v2", keys sorted, for --stage-node-selector. */}}
{{- define "kompress.stageNodeSelector" -}}
{{- $pairs := list }}
{{- range $k, $v := .Values.stages.nodeSelector }}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
A resource quantity as Kubernetes writes it. Helm reads YAML numbers as
float64, which would print 1073741824 as 1.073741824e+09.
*/}}
{{- define "kompress.quantity" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else if not (kindIs "invalid" .) }}
{{- . }}
{{- end }}
{{- end }}
