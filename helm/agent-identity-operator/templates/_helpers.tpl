{{/* The chart name, or nameOverride. */}}
{{- define "aio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource name: fullnameOverride, else the release name
with the chart name appended unless the release name already contains it. */}}
{{- define "aio.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the operator pods. Part of the Deployment's immutable
selector: never change them. */}}
{{- define "aio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object the chart renders. */}}
{{- define "aio.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: agent-identity-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "aio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aio.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "aio.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The proxy sidecar's image: proxy.image.*, or the operator's own image when no repository is set. */}}
{{- define "aio.proxyImage" -}}
{{- with .Values.proxy.image -}}
{{- if not .repository -}}
{{- include "aio.image" $ -}}
{{- else if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (default $.Chart.AppVersion .tag) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Refuses values that the schema cannot express. Included by the Deployment. */}}
{{- define "aio.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicas is %d but leaderElection.enabled is false: two operators would reconcile the same objects at once; enable leader election or set replicas: 1" (int .Values.replicas)) -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) -}}
{{- fail "podDisruptionBudget: set either minAvailable or maxUnavailable (set the other to null), not both" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor scrapes the metrics Service" -}}
{{- end -}}
{{- if eq (int .Values.webhook.port) (int .Values.metrics.port) -}}
{{- fail (printf "webhook.port and metrics.port are both %d; they must differ" (int .Values.webhook.port)) -}}
{{- end -}}
{{- $seen := dict -}}
{{- range .Values.trustDomains -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "trustDomains: the name %q appears twice" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- end -}}
{{- end -}}
