{{- define "barrack-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "barrack-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "barrack-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "barrack-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "barrack-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "barrack-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "barrack-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "barrack-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "barrack-operator.secretName" -}}
{{- if .Values.apiKey.existingSecret -}}
{{- .Values.apiKey.existingSecret -}}
{{- else -}}
{{- printf "%s-api-key" (include "barrack-operator.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs, and no more: its four kinds (kopf watches them and patches
finalizers and its annotations), their status (written by the reconcile loops), events, and
(cluster-wide) the list of namespaces kopf keeps. The API key needs no rule: the kubelet mounts
the Secret as a file. */}}
{{- define "barrack-operator.rules" -}}
- apiGroups: ["barrack.ai"]
  resources: ["barrackvolumes", "barrackinstances", "barrackfirewalls", "barracksshkeys", "barrackstartupscripts", "barracksnapshots", "barrackimages", "barracksnapshotschedules", "barrackpowerschedules"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["barrack.ai"]
  resources: ["barrackvolumes/status", "barrackinstances/status", "barrackfirewalls/status", "barracksshkeys/status", "barrackstartupscripts/status", "barracksnapshots/status", "barrackimages/status", "barracksnapshotschedules/status", "barrackpowerschedules/status"]
  verbs: ["patch"]
# A BarrackSnapshotSchedule creates its BarrackSnapshots and deletes those beyond keep.
- apiGroups: ["barrack.ai"]
  resources: ["barracksnapshots"]
  verbs: ["create", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "patch"]
# A BarrackStartupScript's contentFrom: the ConfigMap key is read, never written.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
{{- end -}}
