"""The one place the SDK talks to the Kubernetes API (the side-effect edge).

Every API error becomes one of the SDK's exceptions with a one-line reason taken
from the API server's own message (a schema or CEL rule's text reads well).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from kaci.azureml._names import GROUP, VERSION
from kaci.azureml.exceptions import (
    ClusterUnreachableException,
    ResourceNotFoundException,
    WebserviceException,
    WorkspaceException,
)

Obj = dict[str, Any]


def api_message(exc: ApiException) -> str:
    """The API server's own reason (its Status message), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{exc.status} {exc.reason}"


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Turn client errors into SDK exceptions that say what was being done."""
    try:
        yield
    except ApiException as exc:
        msg = f"{what}: {api_message(exc)}"
        if exc.status == 404:
            raise ResourceNotFoundException(msg, status_code=404) from None
        if exc.status in (401, 403):
            raise ClusterUnreachableException(msg, status_code=exc.status) from None
        if exc.status == 0 or exc.status is None:
            raise ClusterUnreachableException(msg) from None
        raise WebserviceException(msg, status_code=exc.status) from None
    except (Urllib3Error, OSError) as exc:
        raise ClusterUnreachableException(
            f"{what}: cannot reach the Kubernetes API server ({exc.__class__.__name__}: {exc})"
        ) from None


def _plain(api: kclient.ApiClient, model: Any) -> Obj:
    """A client model object as plain JSON-like dicts (camelCase keys, like kubectl)."""
    out: Obj = api.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    return out


class Kube:
    """Namespaced access to kaci's custom objects and the core objects around them."""

    def __init__(
        self, api: kclient.ApiClient, namespace: str, labels: dict[str, str] | None = None
    ) -> None:
        self.api = api
        # Put on every custom object created or updated (e.g. the operator instance).
        self.labels = dict(labels or {})
        self.namespace = namespace
        self.custom = kclient.CustomObjectsApi(api)
        self.core = kclient.CoreV1Api(api)

    @staticmethod
    def connect(
        kubeconfig: str | None,
        context: str | None,
        namespace: str,
        labels: dict[str, str] | None = None,
    ) -> Kube:
        try:
            api = kconfig.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context
            )
        except Exception as exc:  # ConfigException, OSError: all mean "no usable kubeconfig"
            raise WorkspaceException(f"cannot load kubeconfig context {context!r}: {exc}") from None
        return Kube(api, namespace, labels)

    # -- kaci custom objects -------------------------------------------------

    def get(self, plural: str, name: str) -> Obj | None:
        try:
            with api_errors(f"get {plural}/{name}"):
                obj: Obj = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                    GROUP, VERSION, self.namespace, plural, name
                )
                return obj
        except ResourceNotFoundException:
            return None

    def list_objects(self, plural: str, label_selector: str | None = None) -> list[Obj]:
        with api_errors(f"list {plural}"):
            kwargs: dict[str, Any] = {}
            if label_selector:
                kwargs["label_selector"] = label_selector
            res: Any = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, **kwargs
            )
        items: list[Obj] = res.get("items", [])
        return sorted(items, key=lambda o: str(o["metadata"]["name"]))

    def create(self, plural: str, body: Obj) -> Obj:
        with api_errors(f"create {plural}/{body['metadata']['name']}"):
            obj: Obj = self.custom.create_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, self.namespace, plural, body
            )
            return obj

    def replace_spec(self, plural: str, current: Obj, body: Obj) -> Obj:
        """Replace spec, labels and annotations of an existing object (optimistic lock)."""
        new = dict(current)
        new["metadata"] = dict(current["metadata"])
        for key in ("labels", "annotations"):
            if body["metadata"].get(key):
                new["metadata"][key] = {**current["metadata"].get(key, {}), **body["metadata"][key]}
        new["spec"] = body["spec"]
        with api_errors(f"update {plural}/{body['metadata']['name']}"):
            obj: Obj = self.custom.replace_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, self.namespace, plural, body["metadata"]["name"], new
            )
            return obj

    def apply(self, plural: str, body: Obj) -> Obj:
        """Create, or replace the spec of, the object `body` describes."""
        if self.labels:
            meta = body["metadata"]
            body = {
                **body,
                "metadata": {**meta, "labels": {**meta.get("labels", {}), **self.labels}},
            }
        for _ in range(5):
            current = self.get(plural, body["metadata"]["name"])
            try:
                if current is None:
                    return self.create(plural, body)
                return self.replace_spec(plural, current, body)
            except WebserviceException as exc:
                if exc.status_code != 409:  # 409: someone wrote in between; read again
                    raise
        raise WebserviceException(f"{plural}/{body['metadata']['name']}: kept conflicting")

    def patch(self, plural: str, name: str, patch: Obj) -> Obj:
        with api_errors(f"update {plural}/{name}"):
            obj: Obj = self.custom.patch_namespaced_custom_object(  # type: ignore[assignment]
                GROUP, VERSION, self.namespace, plural, name, patch
            )
            return obj

    def delete(self, plural: str, name: str, propagation: str = "Foreground") -> bool:
        """Delete (foreground propagation by default); False when it was already gone."""
        try:
            with api_errors(f"delete {plural}/{name}"):
                self.custom.delete_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    plural,
                    name,
                    body=kclient.V1DeleteOptions(propagation_policy=propagation),
                )
        except ResourceNotFoundException:
            return False
        return True

    def delete_and_wait(
        self,
        plural: str,
        name: str,
        timeout_sec: float = 180.0,
        propagation: str = "Foreground",
    ) -> bool:
        """Delete, then wait until the object is gone (finalizers run first)."""
        from kaci.azureml._wait import wait_for

        existed = self.delete(plural, name, propagation)
        if existed:
            wait_for(
                lambda: {"gone": self.get(plural, name) is None},
                lambda o: "done" if o["gone"] else "pending",
                timeout_sec,
                lambda o: None,
                f"deletion of {plural}/{name}",
            )
        return existed

    # -- core objects ----------------------------------------------------------

    def create_or_replace_configmap(self, body: Any) -> Obj:
        name = body["metadata"]["name"]
        with api_errors(f"write configmap/{name}"):
            try:
                res = self.core.create_namespaced_config_map(self.namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                res = self.core.replace_namespaced_config_map(name, self.namespace, body)
        return _plain(self.api, res)

    def set_owner(self, kind: str, name: str, owner: Obj) -> None:
        """Make `owner` (a custom object) the controller-less owner of a ConfigMap."""
        ref = {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": False,
        }
        assert kind == "ConfigMap"
        with api_errors(f"set owner of configmap/{name}"):
            self.core.patch_namespaced_config_map(
                name, self.namespace, {"metadata": {"ownerReferences": [ref]}}
            )

    def read_configmap(self, name: str) -> Obj:
        with api_errors(f"read configmap/{name}"):
            res = self.core.read_namespaced_config_map(name, self.namespace)
        return _plain(self.api, res)

    def list_configmaps(self, label_selector: str) -> list[Obj]:
        with api_errors("list configmaps"):
            res = self.core.list_namespaced_config_map(
                self.namespace, label_selector=label_selector
            )
        return [_plain(self.api, i) for i in res.items]

    def delete_configmap(self, name: str) -> None:
        try:
            with api_errors(f"delete configmap/{name}"):
                self.core.delete_namespaced_config_map(name, self.namespace)
        except ResourceNotFoundException:
            pass

    def read_secret(self, name: str) -> Obj:
        with api_errors(f"read secret/{name}"):
            res = self.core.read_namespaced_secret(name, self.namespace)
        return _plain(self.api, res)

    def patch_secret(self, name: str, patch: Obj) -> None:
        with api_errors(f"update secret/{name}"):
            self.core.patch_namespaced_secret(name, self.namespace, patch)

    def list_pods(self, label_selector: str) -> list[Obj]:
        with api_errors("list pods"):
            res = self.core.list_namespaced_pod(self.namespace, label_selector=label_selector)
        return [_plain(self.api, i) for i in res.items]

    def pod_logs(self, pod: str, tail_lines: int, previous: bool = False) -> str:
        with api_errors(f"read logs of pod/{pod}"):
            text: str = self.core.read_namespaced_pod_log(
                pod, self.namespace, tail_lines=tail_lines, previous=previous
            )
            return text

    def list_events(self, field_selector: str) -> list[Obj]:
        with api_errors("list events"):
            res = self.core.list_namespaced_event(self.namespace, field_selector=field_selector)
        return [_plain(self.api, i) for i in res.items]
