"""What the operator asks of kopf and of the API client (handlers.configure,
edges.kube.load)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest
from kaci.edges import kube
from kaci.handlers import NoDiffBase, configure
from kaci.settings import get_settings

POD = kopf.Body(
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
)


def test_kaci_has_no_change_handlers_so_kopf_needs_no_diff_base() -> None:
    """NoDiffBase builds no essence: were a change handler (on.create, on.update,
    on.field, a daemon...) added, it would never see a change."""
    registry = kopf.get_default_registry()
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._spawning.get_all_handlers()) == []
    assert list(registry._indexing.get_all_handlers())  # what kaci does have
    assert list(registry._watching.get_all_handlers())


def test_configure_keeps_kopfs_annotations_and_builds_no_essence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube, "load", lambda: None)
    settings = kopf.OperatorSettings()
    configure(settings=settings)
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    assert storage.build(body=POD) == {}
    assert kopf.AnnotationsDiffBaseStorage().build(body=POD) != {}  # what it saves
    assert storage.fetch(body=POD) is None  # and nothing was ever stored


@pytest.fixture
def fresh_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KACI_MAX_WORKERS", "32")
    get_settings.cache_clear()
    monkeypatch.setattr(kube, "_api", None)
    monkeypatch.setattr(kube, "_dyn", None)
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_client")
def test_the_client_pools_a_connection_for_every_pass_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube.dynamic, "DynamicClient", lambda api: object())  # no discovery
    kube.load()
    assert kube.api().configuration.connection_pool_maxsize >= 32
