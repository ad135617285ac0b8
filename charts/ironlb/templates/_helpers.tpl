{{- define "ironlb.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "ironlb.labels" -}}
app.kubernetes.io/name: ironlb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ironlb.selector" -}}
app.kubernetes.io/name: ironlb
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ironlb.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ironlb.heartbeatSecretName" -}}
{{ .Values.heartbeatSecret.name | default (printf "%s-heartbeat" (include "ironlb.fullname" .)) }}
{{- end -}}

{{- define "ironlb.heartbeatSecretKey" -}}
{{ .Values.heartbeatSecret.key | default "key" }}
{{- end -}}

{{- define "ironlb.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
{{- end -}}
