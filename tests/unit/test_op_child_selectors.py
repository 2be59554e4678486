"""The server-side label selectors for a Webservice's children (handlers.wiring):
the API server sends exactly what the handlers of those kinds keep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from kaci import api
from kaci.handlers import leader, runner, wiring
from kaci.settings import Settings, get_settings
from kopf._cogs.structs import references


def _handlers() -> list[Any]:
    registry = kopf.get_default_registry()
    return [
        *registry._indexing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
    ]


def _resource(group: str, version: str, plural: str) -> references.Resource:
    return references.Resource(group=group, version=version, plural=plural)


def _matches(selector: str, labels: dict[str, str]) -> bool:
    """A label selector's equality and absence terms, as the API server reads them."""
    for term in selector.split(","):
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        else:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
    return True


CHILD = {api.NAME_LABEL: api.WEBSERVICE_APP}


@pytest.mark.parametrize("instance", [None, "canary"])
def test_the_selector_keeps_this_instances_children_only(instance: str | None) -> None:
    selector = wiring.child_selector(instance)
    mine = {**CHILD, api.INSTANCE_LABEL: instance} if instance else dict(CHILD)
    assert _matches(selector, mine)
    assert not _matches(selector, {**CHILD, api.INSTANCE_LABEL: "other"})
    assert not _matches(selector, {"app": "someone-elses"})
    assert _matches(selector, CHILD) is (instance is None)


def test_every_handler_of_a_child_kind_filters_as_the_selector_does() -> None:
    """Were a handler of a child kind to want other objects, the selector would starve it."""
    seen_kinds = set()
    for h in _handlers():
        for kind in wiring.CHILD_KINDS:
            if h.selector.check(_resource(*kind)):
                seen_kinds.add(kind)
                assert h.labels == wiring.child_filter(), h.id
    assert seen_kinds == wiring.CHILD_KINDS  # and each child kind is watched


def test_the_kaci_kinds_are_not_selected_on_the_server() -> None:
    """Images and Webservices read Models and Images of any instance (by-name indexes)."""
    settings = kopf.OperatorSettings()
    wiring.select_children_on_server(settings)
    for plural in (api.MODELS, api.IMAGES, api.WEBSERVICES):
        assert (
            settings.watching.label_selectors.collect(_resource(api.GROUP, api.VERSION, plural))
            == []
        )


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()  # the next test reads its own environment


@pytest.mark.usefixtures("fresh_settings")
@pytest.mark.parametrize("instance", [None, "canary"])
def test_configure_sets_the_selector_on_every_child_kind(
    instance: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if instance:
        monkeypatch.setenv("KACI_OPERATOR_INSTANCE", instance)
    else:
        monkeypatch.delenv("KACI_OPERATOR_INSTANCE", raising=False)
    assert get_settings().operator_instance == instance
    settings = kopf.OperatorSettings()
    wiring.select_children_on_server(settings)
    for kind in wiring.CHILD_KINDS:
        assert settings.watching.label_selectors.collect(_resource(*kind)) == [
            wiring.child_selector(instance)
        ]
    other = _resource("", "v1", "configmaps")
    assert settings.watching.label_selectors.collect(other) == []


def test_every_index_of_objects_is_listed_again() -> None:
    """handlers.prune lists each watched resource again: every index holding objects
    (not names) is under one of them, children with the watch's selector."""
    resources = wiring.watched_resources("canary")
    held = {index for r in resources.values() for index in r.indexes}
    assert held == set(runner.INDEXES) - {"images_by_model", "webservices_by_image"}
    for kind in wiring.CHILD_KINDS:
        assert resources[kind].selector == wiring.child_selector("canary")


def test_a_gone_object_is_not_reconciled() -> None:
    ghost = {
        "kind": api.WEBSERVICE,
        "metadata": {"name": "w", "namespace": "ns", "uid": "u1"},
        "spec": {"image": {"name": "img"}},
    }
    r = runner.Runner(
        {"webservice_objects": {("ns", "w"): [ghost]}},
        Settings(registry="reg"),
        leader.Leadership(None),
        edges=object(),  # type: ignore[arg-type]
    )
    assert r.seen((api.WEBSERVICE, "ns", "w")) is not None
    r.store.gone.add("u1")
    assert r.seen((api.WEBSERVICE, "ns", "w")) is None
