"""kopf's registry holds exactly the indexes the runner reads, each on the resource
and with the label filter it is meant for (a typo in an id would leave a pass
reading an index that nothing fills)."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
from kaci import api
from kaci.handlers import runner, wiring


def indexers() -> dict[str, Any]:
    return {str(h.id): h for h in kopf.get_default_registry()._indexing.get_all_handlers()}


def test_every_index_the_runner_reads_is_registered() -> None:
    assert set(indexers()) == set(runner.INDEXES)


def test_child_indexes_watch_their_kind_and_only_webservice_children() -> None:
    handlers = indexers()
    for index_id, (group, version, plural) in wiring.CHILD_INDEXES.items():
        handler = handlers[index_id]
        selector = handler.selector
        assert selector is not None
        assert (selector.group, selector.version, selector.any_name) == (group, version, plural)
        assert handler.labels is not None
        assert handler.labels.get(api.NAME_LABEL) == api.WEBSERVICE_APP, index_id


def test_a_child_is_indexed_under_its_webservice() -> None:
    labels = {api.WEBSERVICE_LABEL: "mnist"}
    body = {"kind": "Pod", "metadata": {"name": "mnist-abc", "labels": labels}}
    got = asyncio.run(wiring.child_by_owner(namespace="ns", labels=labels, body=body))  # type: ignore[arg-type]
    assert list(got) == [("ns", "mnist")]
    assert asyncio.run(wiring.child_by_owner(namespace="ns", labels={}, body=body)) == {}  # type: ignore[arg-type]
