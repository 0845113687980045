{{- define "dotmesh.name" -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}

{{- define "dotmesh.labels" -}}
app.kubernetes.io/part-of: dotmesh
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* etcd client URLs: the bundled members' stable names, or the user's. */}}
{{- define "dotmesh.etcdEndpoints" -}}
{{- if .Values.etcd.bundled -}}
{{- $name := include "dotmesh.name" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $urls = append $urls (printf "https://%s-etcd-%d.%s-etcd.%s.svc:2379" $name $i $name $.Release.Namespace) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- if not .Values.etcd.endpoints -}}{{- fail "etcd.endpoints: give your etcd's client URLs, or set etcd.bundled=true" -}}{{- end -}}
{{- join "," .Values.etcd.endpoints -}}
{{- end -}}
{{- end -}}

{{/* "true" when the resizer runs: enabled, and a backend that enforces a
size (files keeps none: the driver offers no expansion, and csi-resizer
exits when a driver cannot resize). */}}
{{- define "dotmesh.resizer" -}}
{{- if and .Values.resizer.enabled (ne .Values.backend "files") -}}true{{- end -}}
{{- end -}}
