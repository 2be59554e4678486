{{/* kopf's read-only discovery: which CRDs exist, which namespaces exist. */}}
{{- define "kaci.rbac.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}

{{/*
What the operator does to objects in a watched namespace. Kept in step with
operator/kaci/RBAC.md.
*/}}
{{- define "kaci.rbac.rules" -}}
# Its own kinds: watched; a Webservice creates its Model and Image children;
# kopf patches annotations (progress, last-handled state).
- apiGroups: [kaci.dev]
  resources: [models, images, webservices]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [kaci.dev]
  resources: [models/status, images/status, webservices/status]
  verbs: [get, patch, update]
# Events on the objects it handles (kopf and build progress).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# A Webservice's Deployment, Service and keys Secret.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [services, secrets]
  verbs: [get, list, watch, create, patch, update, delete]
# Model files and execution scripts given as ConfigMaps.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
# Webservice Pods (status and the log of a failed init()); short-lived Pods
# that read a Model's files from a PVC.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get]
{{- end }}
