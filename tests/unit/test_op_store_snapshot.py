"""What the indexes keep of an object (kaci.handlers.store.snapshot)."""

from __future__ import annotations

import copy
import json

import kopf
from kaci.handlers.store import snapshot
from kaci.status.webservice import changed_at

FIELDS = {"f:metadata": {"f:labels": {f"f:label-{i}": {} for i in range(40)}}}
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "ws-1-abc",
        "namespace": "team",
        "labels": {"kaci.dev/webservice": "ws-1"},
        "managedFields": [
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "time": "2026-12-02T10:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": FIELDS,
            },
            {
                "manager": "kubelet",
                "operation": "Update",
                "subresource": "status",
                "time": "2026-12-02T10:00:03Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": FIELDS,
            },
        ],
    },
    "spec": {"containers": [{"name": "scoring", "image": "r/x@sha256:1"}]},
    "status": {"phase": "Running"},
}


def test_field_sets_are_dropped_and_the_rest_kept() -> None:
    kept = snapshot(kopf.Body(copy.deepcopy(POD)))
    assert kept["spec"] == POD["spec"]
    assert kept["status"] == POD["status"]
    assert kept["metadata"]["labels"] == POD["metadata"]["labels"]
    assert [f["manager"] for f in kept["metadata"]["managedFields"]] == [
        "kube-controller-manager",
        "kubelet",
    ]
    assert all("fieldsV1" not in f for f in kept["metadata"]["managedFields"])
    assert kept["metadata"]["managedFields"][1]["subresource"] == "status"  # who wrote status
    assert len(json.dumps(kept)) < len(json.dumps(POD)) / 2


def test_the_last_change_is_still_known() -> None:
    assert changed_at(snapshot(POD)) == changed_at(POD)


def test_a_private_copy() -> None:
    body = copy.deepcopy(POD)
    kept = snapshot(body)
    body["spec"]["containers"][0]["image"] = "changed"
    body["metadata"]["labels"]["x"] = "y"
    assert kept["spec"]["containers"][0]["image"] == "r/x@sha256:1"
    assert "x" not in kept["metadata"]["labels"]


def test_an_object_without_managed_fields() -> None:
    body = {"metadata": {"name": "m"}, "spec": {}}
    assert snapshot(body) == body
