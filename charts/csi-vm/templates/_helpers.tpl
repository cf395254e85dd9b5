{{/* Names are cut at 63 characters: the DNS label limit of object names. */}}
{{- define "csi-vm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "csi-vm.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "csi-vm.labels" -}}
{{ include "csi-vm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: csi-vm
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "csi-vm.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "csi-vm.controllerSA" -}}
{{ .Values.serviceAccount.controllerName | default (printf "%s-controller" (include "csi-vm.fullname" .)) }}
{{- end -}}

{{- define "csi-vm.nodeSA" -}}
{{ .Values.serviceAccount.nodeName | default (printf "%s-node" (include "csi-vm.fullname" .)) }}
{{- end -}}

{{- define "csi-vm.pluginDir" -}}
{{ .Values.node.kubeletDir }}/plugins/{{ .Values.node.csiDriverName }}
{{- end -}}

{{/* The kubelet's own CSI directory: Block claims are published under it. */}}
{{- define "csi-vm.kubeletCsiDir" -}}
{{ .Values.node.kubeletDir }}/plugins/kubernetes.io/csi
{{- end -}}

{{/* Containers that need no privilege at all get this. */}}
{{- define "csi-vm.restricted" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
