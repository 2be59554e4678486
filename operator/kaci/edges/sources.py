"""Fetch a Model's files from its source (the side-effect edge for models).

ConfigMap keys (data and binaryData), an http(s) URL (checked by urlpolicy against
the settings and the cluster's own addresses, which are read here: API server
endpoints, nodes, Pods; with an optional sha256), an OCI image (read through the
Docker Engine), or a path on a PVC (read by a short-lived Pod that mounts the claim
read-only; the files come back as a tar through the API server's exec stream).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, cast

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream as k8s_stream

from kaci.edges import download, kube, urlpolicy
from kaci.edges.builder import Builder, files_from_tar
from kaci.errors import Waiting
from kaci.render.modelfiles import ModelFileError, check_name
from kaci.settings import Settings

log = logging.getLogger(__name__)


class SourceNotReadyError(Waiting):
    """A referenced object is missing or not ready; it may appear later (look again).

    Missing objects the user must create (reasons ending in NotFound) and a Model
    refused for good show as Failed meanwhile; the rest as on their way."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(
            message, reason, failed=reason.endswith("NotFound") or reason == "ModelFailed"
        )


def from_configmap(namespace: str, src: Mapping[str, Any]) -> dict[str, bytes]:
    cm = kube.read_or_none(kube.core().read_namespaced_config_map, src["name"], namespace)
    if cm is None:
        raise SourceNotReadyError(
            "ConfigMapNotFound", f"ConfigMap {src['name']} not found in namespace {namespace}"
        )
    entries: dict[str, bytes] = {k: v.encode() for k, v in (cm.data or {}).items()}
    for k, v in (cm.binary_data or {}).items():
        entries[k] = base64.b64decode(v)
    keys = src.get("keys") or sorted(entries)
    files: dict[str, bytes] = {}
    for key in keys:
        if key not in entries:
            raise ModelFileError(
                f"ConfigMap {src['name']} has no key {key!r} "
                f"(it has: {', '.join(sorted(entries)) or 'none'})"
            )
        files[check_name(key)] = entries[key]
    if not files:
        raise ModelFileError(f"ConfigMap {src['name']} holds no files")
    return files


# The cluster's own addresses change rarely (a node joins, the API server moves): one
# look-up per 30 s serves every Model fetched meanwhile, so 1,000 URL Models cost a
# handful of API calls, not three each.
CLUSTER_CACHE_S = 30.0

_cache_lock = threading.Lock()
_cluster_cache: tuple[float, urlpolicy.ClusterAddresses] | None = None
_pod_cache: dict[urlpolicy.Address, tuple[float, bool]] = {}
_warned: set[str] = set()


def _forbidden_or_missing(e: ApiException, what: str) -> bool:
    """403/404: the operator may run with namespaced RBAC (or an API without the
    object); say so once and go on with what the settings block. Other errors are
    the caller's (fail closed: the download waits)."""
    if e.status not in (403, 404):
        return False
    if what not in _warned:
        _warned.add(what)
        log.warning(
            "model URL policy: cannot read %s (HTTP %s); refusing only what the settings "
            "block there (grant the operator this read to close that gap)",
            what,
            e.status,
        )
    return True


def api_server_endpoints() -> tuple[set[tuple[urlpolicy.Address, int]], set[urlpolicy.Address]]:
    """The API server's (address, port) pairs - as this operator's client reaches it
    (out of the cluster that may be 127.0.0.1, where test file servers also listen)
    and its real endpoints from `default/kubernetes` - and the hosts of those real
    endpoints (refused on every port)."""
    pairs: set[tuple[urlpolicy.Address, int]] = set()
    hosts: set[urlpolicy.Address] = set()
    try:
        hostname, port = urlpolicy.check_syntax(kube.api().configuration.host)
        for a in urlpolicy.system_resolver(hostname, port):
            ip = urlpolicy.parse_address(a)
            if ip is not None:
                pairs.add((ip, port))
    except (urlpolicy.URLRefusedError, OSError, ValueError):
        pass
    try:
        ep = kube.core().read_namespaced_endpoints("kubernetes", "default")
    except ApiException as e:
        if not _forbidden_or_missing(e, "the default/kubernetes Endpoints"):
            raise
        return pairs, hosts
    for subset in ep.subsets or []:
        ports = [p.port for p in subset.ports or [] if p.port]
        for address in [*(subset.addresses or []), *(subset.not_ready_addresses or [])]:
            ip = urlpolicy.parse_address(address.ip or "")
            if ip is not None:
                hosts.add(ip)
                pairs.update((ip, p) for p in ports)
    return pairs, hosts


def node_addresses() -> tuple[set[urlpolicy.Address], list[urlpolicy.Network]]:
    """Every node's IP addresses (status.addresses) and Pod ranges (spec.podCIDRs)."""
    try:
        nodes = kube.core().list_node().items
    except ApiException as e:
        if not _forbidden_or_missing(e, "Nodes"):
            raise
        return set(), []
    addresses: set[urlpolicy.Address] = set()
    networks: list[urlpolicy.Network] = []
    for node in nodes:
        for a in (node.status.addresses if node.status else None) or []:
            ip = urlpolicy.parse_address(a.address or "")
            if ip is not None:  # Hostname / DNS entries are names, not addresses
                addresses.add(ip)
        if node.spec is not None:
            cidrs = set(node.spec.pod_cidrs or []) | {node.spec.pod_cidr or ""}
            networks.extend(n for c in cidrs for n in urlpolicy.parse_networks(c))
    return addresses, sorted(set(networks), key=str)


def _short(e: Exception) -> str:
    """An API error in one line (ApiException's str() carries headers and body)."""
    if isinstance(e, ApiException):
        return f"HTTP {e.status} {e.reason}"
    return str(e)


def cluster_addresses() -> urlpolicy.ClusterAddresses:
    """The cluster's own addresses, read at most once per CLUSTER_CACHE_S."""
    global _cluster_cache
    with _cache_lock:
        if _cluster_cache is not None and time.monotonic() < _cluster_cache[0]:
            return _cluster_cache[1]
        try:
            api_pairs, api_hosts = api_server_endpoints()
            nodes, pod_networks = node_addresses()
            found = urlpolicy.ClusterAddresses(
                api_server=frozenset(api_pairs),
                api_hosts=frozenset(api_hosts),
                nodes=frozenset(nodes),
                pod_networks=tuple(pod_networks),
            )
        except (ApiException, OSError, urllib3.exceptions.HTTPError) as e:
            raise SourceNotReadyError(
                "ClusterLookupFailed",
                f"cannot read the cluster's own addresses to check the model URL: {_short(e)}",
            ) from e
        _cluster_cache = (time.monotonic() + CLUSTER_CACHE_S, found)
        return found


def is_pod_ip(addr: urlpolicy.Address) -> bool:
    """Does a Pod of the cluster (not finished) have this IP now? Cached like the rest."""
    now = time.monotonic()
    with _cache_lock:
        hit = _pod_cache.get(addr)
        if hit is not None and now < hit[0]:
            return hit[1]
        try:
            pods = kube.core().list_pod_for_all_namespaces(
                field_selector=(
                    f"status.podIP={addr},status.phase!=Succeeded,status.phase!=Failed"
                ),
                limit=1,
            )
            found = bool(pods.items)
        except ApiException as e:
            if not _forbidden_or_missing(e, "Pods in all namespaces"):
                raise SourceNotReadyError(
                    "ClusterLookupFailed", f"cannot check whether {addr} is a Pod: {_short(e)}"
                ) from e
            found = False
        except (OSError, urllib3.exceptions.HTTPError) as e:
            raise SourceNotReadyError(
                "ClusterLookupFailed", f"cannot check whether {addr} is a Pod: {_short(e)}"
            ) from e
        for key in [k for k, (until, _) in _pod_cache.items() if until <= now]:
            del _pod_cache[key]
        _pod_cache[addr] = (now + CLUSTER_CACHE_S, found)
        return found


def from_url(src: Mapping[str, Any], settings: Settings) -> dict[str, bytes]:
    url = str(src["url"])
    blocked = urlpolicy.parse_networks(settings.url_blocked_networks)
    allowed = urlpolicy.parse_networks(settings.url_allowed_networks)
    try:
        addresses = urlpolicy.check_url(
            url, blocked, allowed, cluster=cluster_addresses(), is_pod=is_pod_ip
        )
    except urlpolicy.URLRefusedError as e:
        raise ModelFileError(f"model URL refused: {e}") from e
    name = src.get("fileName") or PurePosixPath(url.split("?", 1)[0].split("#", 1)[0]).name
    name = check_name(name or "model")
    try:
        data = download.fetch(url, addresses[0], settings.max_model_bytes)
    except download.DownloadError as e:
        raise SourceNotReadyError("DownloadFailed", f"downloading {url} failed: {e}") from e
    if len(data) > settings.max_model_bytes:
        raise ModelFileError(f"the file at {url} is larger than {settings.max_model_bytes} bytes")
    want = src.get("sha256")
    if want:
        got = hashlib.sha256(data).hexdigest()
        if got.lower() != str(want).lower():
            raise ModelFileError(
                f"the file at {url} has sha256 {got}, not the expected {want}: "
                f"fix sha256 or the URL"
            )
    return {name: data}


def from_pvc(
    namespace: str, src: Mapping[str, Any], owner_name: str, settings: Settings
) -> dict[str, bytes]:
    claim = str(src["claimName"])
    if (
        kube.read_or_none(kube.core().read_namespaced_persistent_volume_claim, claim, namespace)
        is None
    ):
        raise SourceNotReadyError(
            "PVCNotFound", f"PersistentVolumeClaim {claim} not found in namespace {namespace}"
        )
    rel = check_name(str(src["path"]).lstrip("/")) if str(src["path"]).strip("/") else "."
    pod_name = f"kaci-read-{owner_name}"[:63].rstrip("-")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "kaci",
                "app.kubernetes.io/name": "kaci-model-reader",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": 600,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "reader",
                    "image": settings.helper_image or settings.default_base_image,
                    "command": ["sleep", "600"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                    "volumeMounts": [{"name": "model", "mountPath": "/model", "readOnly": True}],
                }
            ],
            "volumes": [
                {"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
            ],
        },
    }
    core = kube.core()
    existing = kube.read_or_none(core.read_namespaced_pod, pod_name, namespace)
    if existing is None:
        try:
            core.create_namespaced_pod(namespace, cast(Any, pod))
        except ApiException as e:
            if e.status != 409:
                raise
    try:
        phase = _wait_running(namespace, pod_name)
        if phase != "Running":
            raise SourceNotReadyError(
                "ReaderPodNotRunning", f"the Pod reading PVC {claim} is {phase}"
            )
        resp = k8s_stream(
            core.connect_get_namespaced_pod_exec,
            pod_name,
            namespace,
            container="reader",
            command=["tar", "-C", "/model", "-cf", "-", rel],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
            binary=True,
        )
        chunks: list[bytes] = []
        err: list[bytes] = []
        while resp.is_open():
            resp.update(timeout=5)
            if resp.peek_stdout():
                chunks.append(_as_bytes(resp.read_stdout()))
            if resp.peek_stderr():
                err.append(_as_bytes(resp.read_stderr()))
        resp.close()
        data = b"".join(chunks)
        if not data:
            raise ModelFileError(
                f"path {src['path']} not found on PVC {claim}: "
                f"{b''.join(err).decode(errors='replace')}"
            )
        return files_from_tar(data, settings.max_model_bytes, strip_first=rel != ".")
    finally:
        kube.read_or_none(core.delete_namespaced_pod, pod_name, namespace, grace_period_seconds=0)


def _as_bytes(x: Any) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode("latin-1")


def _wait_running(namespace: str, pod_name: str) -> str:
    """Watch the reader Pod until it runs (bounded by the watch's timeout)."""
    from kubernetes import watch

    w = watch.Watch()  # type: ignore[no-untyped-call]
    phase = "Pending"
    deadline = time.monotonic() + 120
    for event in w.stream(  # type: ignore[no-untyped-call]
        kube.core().list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={pod_name}",
        timeout_seconds=120,
    ):
        phase = event["object"].status.phase or "Pending"
        if phase != "Pending" or time.monotonic() > deadline:
            w.stop()  # type: ignore[no-untyped-call]
            break
    return phase


def fetch(
    namespace: str, source: Mapping[str, Any], owner_name: str, settings: Settings, builder: Builder
) -> dict[str, bytes]:
    if "configMap" in source:
        return from_configmap(namespace, source["configMap"])
    if "url" in source:
        return from_url(source["url"], settings)
    if "pvc" in source:
        return from_pvc(namespace, source["pvc"], owner_name, settings)
    if "image" in source:
        img = source["image"]
        try:
            return builder.files_from_image(
                str(img["reference"]), str(img.get("path") or "/"), settings.max_model_bytes
            )
        except ModelFileError:
            raise
        except Exception as e:  # the engine's errors: pull failures, missing paths
            raise SourceNotReadyError(
                "ImageReadFailed", f"reading model files from image {img['reference']} failed: {e}"
            ) from e
    raise ModelFileError("the model source names none of configMap, url, pvc, image")
