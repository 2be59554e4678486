{{/*
Cluster-scoped reads: kopf's discovery, which CRDs exist (to find the kaci
resources) and which namespaces exist (to follow --namespace patterns), and the
nodes (URL policy). Read-only.
*/}}
{{- define "kaci.rbac.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
# Model URLs pointing at a node (its addresses, the kubelet) are refused; the nodes'
# Pod CIDRs say which addresses are Pods. Read-only.
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list]
{{- end }}

{{/*
The API server's real addresses, from the default/kubernetes Endpoints: model URLs
pointing there are refused. Cluster-wide RBAC: part of the ClusterRole (any
namespace's Endpoints, read-only); namespaced RBAC: a Role in "default" limited
to that one object (see templates/rbac.yaml).
*/}}
{{- define "kaci.rbac.apiServerEndpointsRule" -}}
- apiGroups: [""]
  resources: [endpoints]
  verbs: [get]
{{- end }}

{{/*
kopf's peering (peering.enabled): the replicas read each other's keep-alives from
the peering object and patch their own into it. The chart creates the object, so
no create. Cluster-wide when the operator watches every namespace
(ClusterKopfPeering), else a KopfPeering in each watched namespace.
*/}}
{{- define "kaci.rbac.clusterPeeringRules" -}}
{{- if and .Values.peering.enabled (empty .Values.watchNamespaces) }}
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}

{{- define "kaci.rbac.namespacedPeeringRules" -}}
{{- if and .Values.peering.enabled .Values.watchNamespaces }}
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}

{{/*
What the operator does to objects in a watched namespace: exactly the verbs
operator/kaci/RBAC.md lists (keep the two in step). No delete on a Webservice's
Deployment, Service or Secret: owner references let the garbage collector do that
(the HPA, PDB and Ingress are deleted when the spec stops asking for them).
*/}}
{{- define "kaci.rbac.rules" -}}
# The three kinds: watched; a Webservice creates/patches its child Model and Image;
# kopf keeps its progress in annotations (patch).
- apiGroups: [kaci.dev]
  resources: [models, images, webservices]
  verbs: [get, list, watch, create, patch]
- apiGroups: [kaci.dev]
  resources: [models/status, images/status, webservices/status]
  verbs: [get, patch]
# A Webservice's Deployment (server-side apply), watched to follow rollouts.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# A Webservice's Pods; the short-lived reader Pod of a PVC model source.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
# The last log lines of a failed scoring container (init() raised).
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
# Streams a tar of a PVC model source out of the reader Pod.
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [create]
# A Webservice is Ready once its Service's EndpointSlices list a ready Pod (what
# clients reach); watched to notice that moment.
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
# A Webservice's Service (watched: the operator compares it with what it wants
# instead of applying it again on every pass).
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# AKS serving: a Webservice's HorizontalPodAutoscaler (autoscale), PodDisruptionBudget
# (more than one replica), Ingress (ingress.enabled) and NetworkPolicy
# (serving.networkPolicy); watched, and deleted when no longer asked for.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
# A Webservice's <name>-keys Secret (authEnabled; tokenAuthEnabled: the signing key).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
# Model files, score.py and conda files kept in ConfigMaps.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
# A PVC model source must exist before it is read.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get]
# Progress and build logs as Events (kopf posts core Events).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
