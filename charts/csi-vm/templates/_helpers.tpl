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

{{/* Accounts made elsewhere (create: false) have no name to default to. */}}
{{- define "csi-vm.controllerSA" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.controllerName | default (printf "%s-controller" (include "csi-vm.fullname" .)) }}
{{- else -}}
{{ required "serviceAccount.controllerName is required with serviceAccount.create=false: set it to the controller's ServiceAccount made elsewhere" .Values.serviceAccount.controllerName }}
{{- end -}}
{{- end -}}

{{- define "csi-vm.nodeSA" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.nodeName | default (printf "%s-node" (include "csi-vm.fullname" .)) }}
{{- else -}}
{{ required "serviceAccount.nodeName is required with serviceAccount.create=false: set it to the node agent's ServiceAccount made elsewhere" .Values.serviceAccount.nodeName }}
{{- end -}}
{{- end -}}

{{/* No default driver: a made-up name would mount a directory no driver
     serves. Needed wherever the node socket is mounted (node pods, test Pod). */}}
{{- define "csi-vm.pluginDir" -}}
{{ .Values.node.kubeletDir }}/plugins/{{ required "node.csiDriverName is required: set it to the CSI driver your VM disks use, as `kubectl get csidrivers` names it (e.g. --set node.csiDriverName=rbd.csi.ceph.com)" .Values.node.csiDriverName }}
{{- end -}}

{{/* The node pods' scheduling; the `helm test` Pod must land where they do,
     beside a node plugin of the driver. */}}
{{- define "csi-vm.nodeScheduling" -}}
{{- with .Values.node.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.node.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.node.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "csi-vm.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
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

{{/*
The node's directory of launcher Pods' run directories: the controller puts
each Pod's there (csi_vm.crd.vmpod.HOST_DIR), the node agent reads them.
*/}}
{{- define "csi-vm.vmRunDir" -}}
/var/run/csi-vm/vms
{{- end }}
