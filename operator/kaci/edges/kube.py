"""The Kubernetes edge: API clients, server-side apply, status patches.

Desired objects come from pure render functions; this module only sends them.
Server-side apply (field manager "kaci", forced) is "get, create or patch" in
one call, idempotent, and adopts an existing object by setting our owner
reference on it.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from kaci.api import GROUP, MANAGER, VERSION
from kaci.settings import get_settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_api: client.ApiClient | None = None
_dyn: dynamic.DynamicClient | None = None


def load() -> None:
    """Credentials: in-cluster when running in a Pod, else KUBECONFIG."""
    global _api, _dyn
    with _lock:
        if _api is not None:
            return
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        # One connection per pass thread, and a few for the rest: with fewer (the
        # client's default is 5 per core), urllib3 drops the connections it cannot
        # pool and the next request pays a new TLS handshake.
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = max(
            configuration.connection_pool_maxsize, get_settings().max_workers + 4
        )
        _api = client.ApiClient(configuration)
        _dyn = dynamic.DynamicClient(_api)  # type: ignore[no-untyped-call]


def api() -> client.ApiClient:
    load()
    assert _api is not None
    return _api


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api())


def apps() -> client.AppsV1Api:
    return client.AppsV1Api(api())


def discovery() -> client.DiscoveryV1Api:
    return client.DiscoveryV1Api(api())


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api())


def apply(manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply one object; returns the object as the server has it."""
    load()
    assert _dyn is not None
    resource = _dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    result = resource.server_side_apply(
        body=manifest,
        namespace=manifest["metadata"].get("namespace"),
        field_manager=MANAGER,
        force_conflicts=True,
    )
    return result.to_dict()  # type: ignore[no-any-return]


def delete(api_version: str, kind: str, namespace: str, name: str) -> None:
    """Delete one object (already gone: nothing to do)."""
    load()
    assert _dyn is not None
    resource = _dyn.resources.get(api_version=api_version, kind=kind)
    try:
        resource.delete(name=name, namespace=namespace)
    except ApiException as e:
        if e.status != 404:
            raise


def node_address() -> str | None:
    """A Ready node's ExternalIP, else its InternalIP (None: no node says one)."""
    statuses = [n.status for n in core().list_node().items if n.status is not None]
    ready = [
        st
        for st in statuses
        if any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])
    ]
    for kind in ("ExternalIP", "InternalIP"):
        for st in ready or statuses:
            for addr in st.addresses or []:
                if addr.type == kind and addr.address:
                    return str(addr.address)
    return None


def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj = custom().get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        return cast(dict[str, Any], obj)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def list_custom(plural: str, namespace: str) -> list[dict[str, Any]]:
    out = cast(
        dict[str, Any], custom().list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    )
    return list(out.get("items", []))


def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge-patch the status subresource (missing object: nothing to do)."""
    try:
        # As kaci's field manager: managedFields then say when kaci last wrote it.
        custom().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": status}, field_manager=MANAGER
        )
    except ApiException as e:
        if e.status != 404:
            raise


def post_event(obj: Mapping[str, Any], warning: bool, reason: str, message: str) -> None:
    """A core/v1 Event about `obj` (what `kubectl describe` shows). Best effort: an
    Event that cannot be posted is logged, never a reason to fail a pass."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    now = datetime.datetime.now(datetime.UTC)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{meta.get('name')}.", namespace=namespace),
        involved_object=client.V1ObjectReference(
            api_version=obj.get("apiVersion"),
            kind=obj.get("kind"),
            name=meta.get("name"),
            namespace=namespace,
            uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
        ),
        reason=reason,
        message=message[:1024],
        type="Warning" if warning else "Normal",
        source=client.V1EventSource(component=MANAGER),
        reporting_component=MANAGER,
        reporting_instance=MANAGER,
        first_timestamp=now,
        last_timestamp=now,
        count=1,
    )
    try:
        core().create_namespaced_event(namespace, event)
    except Exception as e:
        log.warning(
            "could not post the Event %s about %s/%s: %s", reason, namespace, meta.get("name"), e
        )


def get_cluster_custom(group: str, version: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        return cast(
            dict[str, Any], custom().get_cluster_custom_object(group, version, plural, name)
        )
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def get_namespaced_custom(
    group: str, version: str, namespace: str, plural: str, name: str
) -> dict[str, Any] | None:
    try:
        obj = custom().get_namespaced_custom_object(group, version, namespace, plural, name)
        return cast(dict[str, Any], obj)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def read_or_none(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def to_json(obj: Any) -> Any:
    """A client model object in the API server's JSON form (camelCase keys)."""
    return api().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def list_uids(
    group: str, version: str, plural: str, namespace: str, label_selector: str | None
) -> set[str]:
    """The uids of every object of a resource in a namespace ("": cluster-wide): a
    consistent list (read from etcd, not the watch cache) of metadata only, in pages."""
    path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    path += f"/namespaces/{namespace}/{plural}" if namespace else f"/{plural}"
    load()
    assert _dyn is not None
    uids: set[str] = set()
    token: str | None = None
    while True:
        response = _dyn.request(
            "GET",
            path,
            label_selector=label_selector,
            limit=500,
            _continue=token,
            header_params={
                "Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            },
            serialize=False,  # the bytes: no ResourceInstance of a big list
        )
        page = json.loads(response.data)
        uids.update(str(i["metadata"]["uid"]) for i in page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return uids
