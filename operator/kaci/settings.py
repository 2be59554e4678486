"""The operator's one typed settings object, read from KACI_* environment variables.

The Helm chart sets these from its values; a developer running the operator by
hand against the local cluster gets defaults that fit `make cluster`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KACI_", frozen=True)

    # What builds scoring images and model images (kaci.edges.builder): `buildkit`, a
    # buildkitd the chart runs in the cluster; `remote`, a buildkitd the user runs
    # (mTLS, the same driver); `docker`, a Docker Engine (docker_host).
    builder: Literal["buildkit", "remote", "docker"] = "buildkit"
    # buildkitd's address for the buildkit and remote drivers: tcp://host:port or
    # unix:///path (buildctl's own default when unset).
    buildkit_addr: str = "unix:///run/buildkit/buildkitd.sock"
    # mTLS to buildkitd (file paths; all three or none), and the name in its certificate
    # when it differs from the address's host.
    buildkit_tls_ca: str | None = None
    buildkit_tls_cert: str | None = None
    buildkit_tls_key: str | None = None
    buildkit_tls_server_name: str | None = None
    # The buildctl binary (shipped in the operator image; found on PATH by default).
    buildctl: str = "buildctl"
    # Layer compression of pushed scoring images (containerd >= 1.5 pulls zstd; Docker
    # 20.10 does not). Model images are always gzip: Python and older engines read them.
    image_compression: Literal["zstd", "gzip", "uncompressed"] = "zstd"
    # Build cache: `registry` keeps it beside each image (`<repo>:buildcache`, mode=max),
    # so it survives a buildkitd restart and serves every replica; `none` only buildkitd's own.
    build_cache: Literal["registry", "none"] = "registry"
    # Docker Engine of the docker driver: a unix socket or tcp://.
    docker_host: str = "unix:///var/run/docker.sock"
    # Registry the builder pushes to, as host[:port][/prefix]; images are named below it.
    registry: str = "127.0.0.1:5000"
    # Registry address the kubelet pulls from, when it differs from the push address.
    registry_pull: str | None = None
    # Plain HTTP registry (no TLS), like the local test registry.
    registry_insecure: bool = True
    # Path to a docker config.json with credentials (`auths`) for the registry: builds
    # push with it, and the operator reads model images and base image digests with it
    # (None: anonymous).
    registry_push_config: str | None = None
    # Name of a kubernetes.io/dockerconfigjson Secret given to Webservice Pods for pulling.
    image_pull_secret: str | None = None

    # Base image of scoring images when an Image does not name one.
    default_base_image: str = "python:3.11-slim"
    # pip sources: an index URL, and/or a folder of wheels inside the base image.
    pip_index_url: str | None = None
    pip_find_links: str | None = None
    pip_no_index: bool = False

    # Seconds before a build is abandoned and the Image marked Failed.
    build_timeout_s: int = Field(default=1800, gt=0)
    # Builds running at once in this operator (each is one buildctl or engine build).
    max_parallel_builds: int = Field(default=2, gt=0)

    # Model URLs: networks never downloaded from, comma-separated CIDRs - the cluster's
    # Service range (its API cannot tell it). Refused besides, read from the cluster or
    # always: the API server, the nodes, the Pod network and Pod IPs, loopback, link-local
    # (see kaci/urlpolicy.py).
    url_blocked_networks: str = "10.96.0.0/12"
    # Networks allowed even so (e.g. "127.0.0.1/32" for a local test file server); never
    # the API server or a node.
    url_allowed_networks: str = ""
    # Largest total size of one model's files, in bytes (they pass through the operator).
    max_model_bytes: int = Field(default=1 << 30, gt=0)
    # Image of the short-lived Pod that reads a PVC model source (needs `tar`);
    # default_base_image when unset.
    helper_image: str | None = None

    # Passes running at once (threads; a build holds one for its length).
    max_workers: int = Field(default=16, gt=0)
    # Every object is looked at again once per this many seconds, spread over the
    # period: the safety net under every wake-up. A pass that changes nothing makes
    # no API request, so this costs CPU, not API server load.
    resync_s: int = Field(default=600, ge=10)

    # Handle only objects labelled kaci.dev/operator=<this>; when unset, only objects
    # without that label. Lets a test or canary operator run beside the main one.
    operator_instance: str | None = None

    # Port of the operator's Prometheus /metrics (kaci.edges.metrics); None: not served.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    # Cluster DNS suffix used in scoringUri.
    cluster_domain: str = "cluster.local"

    # The Ingress of a Webservice with ingress.enabled (AKS serving, issue #16): its
    # IngressClass (None: the cluster's default class), host rule (None: any host), TLS
    # Secret in the Webservice's namespace (None: plain HTTP), and the base URL its
    # status.scoringUri starts with (None: http(s)://<host>; with neither, cluster DNS).
    ingress_class: str | None = None
    ingress_host: str | None = None
    ingress_tls_secret: str | None = None
    ingress_base_url: str | None = None
    # A NetworkPolicy per Webservice (the chart's serving.networkPolicy): its scoring
    # Pods take traffic only from these NetworkPolicyPeers (JSON, e.g. the ingress
    # controller's and Prometheus's namespaces by namespaceSelector); with none given,
    # only from Pods in the Webservice's own namespace. Off: no policy is made (and one
    # made before is deleted). The cluster's CNI enforces it, if it enforces any.
    network_policy: bool = False
    network_policy_from: list[dict[str, Any]] = Field(default_factory=list)
    # Where scoring Pods run (the chart's serving.nodeSelector and serving.tolerations,
    # JSON): a node pool of their own, GPU nodes, or kwok's simulated nodes in
    # bench/scale. Given to every Webservice's Pod template; a change rolls them.
    scoring_node_selector: dict[str, str] = Field(default_factory=dict)
    scoring_tolerations: list[dict[str, Any]] = Field(default_factory=list)
    # Address in the scoringUri of a NodePort Webservice; None: a node's ExternalIP,
    # else its InternalIP (read from the nodes).
    node_address: str | None = None

    # kopf peering (`--peering` / `--priority` win over these): the name of the peering
    # object (a ClusterKopfPeering when watching all namespaces, a KopfPeering in each
    # watched namespace otherwise); None runs standalone, as one lone operator.
    peering: str | None = None
    # This process's peering priority; None: derived from its start time, so the oldest
    # running replica leads (see kaci.operator.default_priority).
    peering_priority: int | None = None
    # Seconds other replicas trust this one's keep-alive: a replica that dies without
    # saying goodbye (SIGKILL, lost node) is replaced by a waiting one within this time.
    # Keep-alives are sent 5-10 s before it runs out, hence the minimum.
    peering_lifetime_s: int = Field(default=10, ge=6)

    @property
    def pull_registry(self) -> str:
        return self.registry_pull or self.registry


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
