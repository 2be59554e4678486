{{/*
Names. Every generated name is cut at 63 characters (the DNS label limit that
Kubernetes applies to most names and to label values) and never ends in "-".
*/}}

{{- define "kaci.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object this release creates. */}}
{{- define "kaci.fullname" -}}
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

{{- define "kaci.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "kaci.labels" -}}
helm.sh/chart: {{ include "kaci.chart" . }}
{{ include "kaci.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels that select the operator Pod; they never change across upgrades. */}}
{{- define "kaci.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kaci.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kaci.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kaci.fullname" .) .Values.serviceAccount.name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A name with a suffix, cut so that the whole stays within 63 characters. */}}
{{- define "kaci.suffixed" -}}
{{- $suffix := index . 1 }}
{{- $base := include "kaci.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
{{- end }}

{{/*
The name of an object that is not in the release's namespace: the cluster-scoped
ones (ClusterRole, ClusterRoleBinding, ClusterKopfPeering) and the namespaced ones
the release puts into other namespaces (the Roles, RoleBindings and KopfPeerings of
watchNamespaces, the Role in "default"). Helm release names are unique per
namespace only, so these names carry the release's namespace too
("<fullname>-<namespace>[-<suffix>]"): the same release name in two namespaces
never claims the same object. Called with (list . "suffix") or (list . "").
Past 63 characters the "<fullname>-<namespace>" part is cut and ends in 8
characters of its sha256 (the whole, uncut), so two long names that share their
first characters still differ; the suffix is always kept whole.
*/}}
{{- define "kaci.uniqueName" -}}
{{- $ctx := index . 0 }}
{{- $suffix := index . 1 }}
{{- $base := printf "%s-%s" (include "kaci.fullname" $ctx) $ctx.Release.Namespace }}
{{- $room := 63 }}
{{- if $suffix }}
{{- $room = sub 62 (len $suffix) | int }}
{{- end }}
{{- if gt (len $base) $room }}
{{- $base = printf "%s-%s" ($base | trunc (sub $room 9 | int) | trimSuffix "-") ($base | sha256sum | trunc 8) }}
{{- end }}
{{- if $suffix }}
{{- printf "%s-%s" $base $suffix }}
{{- else }}
{{- $base }}
{{- end }}
{{- end }}

{{/* The peering object's name (peering.enabled): peering.name, else unique per release. */}}
{{- define "kaci.peeringName" -}}
{{- default (include "kaci.uniqueName" (list . "")) .Values.peering.name }}
{{- end }}

{{- define "kaci.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The host path of the Docker socket (builder.driver=docker with a unix:// dockerHost),
or "": over tcp, and with every other driver, nothing of the node is mounted.
*/}}
{{- define "kaci.dockerSocketPath" -}}
{{- if and (eq .Values.builder.driver "docker") (hasPrefix "unix://" .Values.builder.dockerHost) }}
{{- trimPrefix "unix://" .Values.builder.dockerHost }}
{{- end }}
{{- end }}

{{/*
Where the node's Docker socket folder is mounted in the Pod (builder.socketMount
Directory): a path of kaci's own, so the mount hides nothing of the image.
*/}}
{{- define "kaci.dockerSocketDirInPod" -}}
/var/run/kaci/docker-host
{{- end }}

{{/*
The engine address the operator uses (KACI_DOCKER_HOST): builder.dockerHost, except
that with a folder mount a unix socket is reached inside the mounted folder.
*/}}
{{- define "kaci.dockerHostInPod" -}}
{{- $sock := include "kaci.dockerSocketPath" . }}
{{- if and $sock (eq .Values.builder.socketMount "Directory") }}
{{- printf "unix://%s/%s" (include "kaci.dockerSocketDirInPod" .) (base $sock) }}
{{- else }}
{{- .Values.builder.dockerHost }}
{{- end }}
{{- end }}

{{/*
Refuse value combinations the schema cannot express, with a message that says
what to change.
*/}}
{{- define "kaci.validate" -}}
{{- if and (eq .Values.builder.driver "buildkit") (not .Values.buildkit.enabled) .Values.operator.enabled }}
{{- fail "builder.driver=buildkit builds with the chart's buildkitd, and buildkit.enabled is false: enable it, or use builder.driver=remote (your buildkitd) or docker" }}
{{- end }}
{{- if and .Values.buildkit.tls.certManager.enabled (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) }}
{{- fail "buildkit.tls.certManager.enabled=true, but the cluster has no cert-manager.io/v1 API: install cert-manager first, or let the chart make the certificates (false)" }}
{{- end }}
{{- if and .Values.rbac.namespaced (empty .Values.watchNamespaces) }}
{{- fail "rbac.namespaced=true needs watchNamespaces: the namespaces the operator may watch (it gets a Role in each)" }}
{{- end }}
{{- $sock := include "kaci.dockerSocketPath" . }}
{{- if and $sock (not (hasPrefix "/" $sock)) }}
{{- fail (printf "builder.dockerHost %q: a unix socket needs an absolute path, e.g. unix:///var/run/docker.sock" .Values.builder.dockerHost) }}
{{- end }}
{{- if and $sock (eq .Values.builder.socketMount "Directory") (eq (dir $sock) "/") }}
{{- fail (printf "builder.dockerHost %q: with builder.socketMount=Directory the socket's folder is mounted, and that must not be the node's / (put the socket in a folder, or set builder.socketMount=Socket)" .Values.builder.dockerHost) }}
{{- end }}
{{- end }}

{{/*
Other kaci operators on the cluster whose objects overlap this release's (NOTES.txt):
a Deployment of this chart in another release whose operator instance is the same
(KACI_OPERATOR_INSTANCE, empty for both counts) and whose watched namespaces meet
this release's (no --namespace argument: every namespace). Read with `lookup`, so
only on a real install or upgrade (helm template and client dry runs see nothing).
Prints one "<namespace>/<release>" per line.
*/}}
{{- define "kaci.overlappingReleases" -}}
{{- $mine := .Values.watchNamespaces }}
{{- $instance := .Values.operator.instance }}
{{- $deployments := lookup "apps/v1" "Deployment" "" "" }}
{{- range $d := ($deployments.items | default list) }}
{{- $labels := $d.metadata.labels | default dict }}
{{- $release := index $labels "app.kubernetes.io/instance" | default "" }}
{{- $chart := index $labels "helm.sh/chart" | default "" }}
{{- if and (hasPrefix (printf "%s-" $.Chart.Name) $chart) (eq (index $labels "app.kubernetes.io/component" | default "") "operator") (not (and (eq $d.metadata.namespace $.Release.Namespace) (eq $release $.Release.Name))) }}
{{- $theirs := list }}
{{- $theirInstance := "" }}
{{- range $c := $d.spec.template.spec.containers }}
{{- range $a := ($c.args | default list) }}
{{- if hasPrefix "--namespace=" $a }}
{{- $theirs = append $theirs (trimPrefix "--namespace=" $a) }}
{{- end }}
{{- end }}
{{- range $e := ($c.env | default list) }}
{{- if eq $e.name "KACI_OPERATOR_INSTANCE" }}
{{- $theirInstance = $e.value | default "" }}
{{- end }}
{{- end }}
{{- end }}
{{- $meet := or (empty $mine) (empty $theirs) }}
{{- range $ns := $mine }}
{{- if has $ns $theirs }}
{{- $meet = true }}
{{- end }}
{{- end }}
{{- if and $meet (eq $theirInstance $instance) (gt (int $d.spec.replicas) 0) }}
{{ $d.metadata.namespace }}/{{ $release }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* ---------------------------------------------------------------- buildkitd */}}

{{/* buildkitd's Deployment and Service name: "<fullname>-buildkitd". */}}
{{- define "kaci.buildkitName" -}}
{{- include "kaci.suffixed" (list . "buildkitd") }}
{{- end }}

{{/* The Secret with buildkitd's server certificate (ca.crt, tls.crt, tls.key). */}}
{{- define "kaci.buildkitServerSecret" -}}
{{- include "kaci.suffixed" (list . "buildkitd-tls") }}
{{- end }}

{{/* The Secret with the operator's client certificate (ca.crt, tls.crt, tls.key). */}}
{{- define "kaci.buildkitClientSecret" -}}
{{- include "kaci.suffixed" (list . "buildkit-client-tls") }}
{{- end }}

{{/*
buildkitd's labels: a name of its own (not the operator's), so that nothing that
selects the operator's Pods (its Deployment, the health Service, `kubectl logs -l`)
selects buildkitd's too.
*/}}
{{- define "kaci.buildkitSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-buildkitd" (include "kaci.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kaci.buildkitLabels" -}}
helm.sh/chart: {{ include "kaci.chart" . }}
{{ include "kaci.buildkitSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.buildkit.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: builder
{{- end }}

{{/* The DNS name of buildkitd's Service, as its certificate names it. */}}
{{- define "kaci.buildkitHost" -}}
{{- printf "%s.%s.svc.%s" (include "kaci.buildkitName" .) .Release.Namespace .Values.operator.clusterDomain }}
{{- end }}

{{/* buildkitd's TCP port (the Service's and the container's). */}}
{{- define "kaci.buildkitPort" -}}
1234
{{- end }}

{{/*
The registries buildkitd reaches over plain HTTP (buildkitd.toml): registry.url's
host when registry.insecure, and buildkit.insecureRegistries.
*/}}
{{- define "kaci.buildkitInsecureRegistries" -}}
{{- $hosts := .Values.buildkit.insecureRegistries }}
{{- if .Values.registry.insecure }}
{{- $hosts = append $hosts (first (splitList "/" .Values.registry.url)) }}
{{- end }}
{{- range $hosts | uniq }}
{{ . }}
{{- end }}
{{- end }}

{{/*
Where the operator's Pod mounts the builder's client certificate (buildkit and
remote drivers with TLS).
*/}}
{{- define "kaci.builderTlsDir" -}}
/var/run/kaci/buildkit-client
{{- end }}

{{/* The Secret holding the operator's builder client certificate, or "" (no TLS). */}}
{{- define "kaci.builderTlsSecret" -}}
{{- if eq .Values.builder.driver "buildkit" }}
{{- include "kaci.buildkitClientSecret" . }}
{{- else if eq .Values.builder.driver "remote" }}
{{- .Values.builder.remote.tlsSecret }}
{{- end }}
{{- end }}

{{/*
buildkitd.toml: the OCI worker (runc, in the image) and no containerd worker (the
node's containerd is not reachable from the Pod, and must not be), and the
registries reached over plain HTTP.
*/}}
{{- define "kaci.buildkitConfig" -}}
# Made by the kaci chart (values buildkit.*, registry.url, registry.insecure).
[worker.oci]
  enabled = true
[worker.containerd]
  enabled = false
{{- range splitList "\n" (include "kaci.buildkitInsecureRegistries" . | trim) }}
{{- if . }}
[registry.{{ . | quote }}]
  http = true
  insecure = true
{{- end }}
{{- end }}
{{- end }}

{{/*
imagePullSecrets of every Pod of the chart: global.imagePullSecrets (a parent chart's)
and imagePullSecrets, each named once.
*/}}
{{- define "kaci.imagePullSecrets" -}}
{{- with (concat (.Values.global.imagePullSecrets | default list) .Values.imagePullSecrets) | uniq }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
