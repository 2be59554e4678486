"""A deletion no watch ever tells of: the operator frozen (SIGSTOP) while the API server
restarts, a Webservice deleted and etcd compacted meanwhile. When the operator runs
again, its watches ask for a resourceVersion the API server no longer has (410 Gone)
and kopf lists every resource anew; the deleted Webservice is in no list and gets no
DELETED event. The operator must find it gone (handlers/prune.py) and not deploy it
again when its orphaned Deployment goes: before that fix, the kwok bench's teardown
left hundreds of deleted Webservices whose Deployments the operator and the garbage
collector re-created and deleted in a loop. The Webservice that was not deleted goes on
being reconciled.

The API server is stopped by the PID hack/cluster.sh recorded and started again by
`hack/cluster.sh up`; etcd is compacted through its own HTTP gateway."""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.faults import (  # type: ignore[import-not-found,unused-ignore]
    factor_configmap,
    image,
    model,
    own_daemon_pid,
    start_cluster,
    webservice,
)
from support.kaci_operator import Operator, run_operator, wait_until  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = ROOT / ".cluster"
ETCD = "http://127.0.0.1:2379"
PRUNED = "webservices gone while their watch was down"


def _etcd(path: str, body: dict[str, Any]) -> dict[str, Any]:
    data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    req = urllib.request.Request(f"{ETCD}{path}", data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def compact_etcd() -> None:
    """Forget every event so far: a watch from an older resourceVersion gets 410 Gone."""
    revision = _etcd("/v3/kv/range", {"key": "AA==", "limit": 1})["header"]["revision"]
    _etcd("/v3/kv/compaction", {"revision": revision, "physical": True})


def restart_api_server() -> None:
    # SIGKILL, a crash: on SIGTERM the API server drains its connections, and the frozen
    # operator's never drain (`hack/cluster.sh down` too kills it after 20 s).
    pid = own_daemon_pid(CLUSTER_DIR, "kube-apiserver")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or None, "the API server to exit", 60, 0.5)
    start_cluster()


@pytest.fixture
def frozen_operator() -> Iterator[Operator]:
    """The operator, resumed (SIGCONT) whatever the test did, before it is stopped."""
    with run_operator(f"relist-{secrets.token_hex(3)}") as op:
        try:
            yield op
        finally:
            op.proc.send_signal(signal.SIGCONT)


def test_a_webservice_deleted_while_no_watch_listened_is_not_deployed_again(
    kubectl: Any, make_namespace: Any, crds: None, frozen_operator: Operator
) -> None:
    op = frozen_operator
    ns = make_namespace(f"t-relist-{secrets.token_hex(3)}")
    marker = secrets.token_hex(4)
    docs = [
        model("factor", {"configMap": {"name": "factor"}}),
        image("img", ["factor"], marker),
        webservice("keep", {"image": {"name": "img"}}, marker),
        webservice("gone", {"image": {"name": "img"}}, marker),
    ]
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(factor_configmap("factor")))
    kubectl("apply", "-n", ns, "-f", "-", input="\n".join(json.dumps(op.label(d)) for d in docs))
    for name in ("keep", "gone"):
        kubectl(
            "wait",
            "--for=condition=Ready",
            f"webservice/{name}",
            "-n",
            ns,
            "--timeout=600s",
            timeout=700,
        )

    def deployment(name: str) -> dict[str, Any] | None:
        out = kubectl("get", "deployment", name, "-n", ns, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None

    # Frozen: its watch connections die with the API server, and it reads nothing of
    # what follows.
    op.proc.send_signal(signal.SIGSTOP)
    restart_api_server()
    # Orphaned, the Deployment outlives its Webservice, so its deletion later is an
    # event the operator does see, about a Webservice it never saw go.
    kubectl("delete", "webservice", "gone", "-n", ns, "--cascade=orphan", "--wait=true")
    wait_until(
        lambda: (d := deployment("gone")) is not None and not d["metadata"].get("ownerReferences"),
        "the garbage collector to orphan the Deployment",
    )
    compact_etcd()
    log_start = op.log_path.stat().st_size
    op.proc.send_signal(signal.SIGCONT)

    def told() -> bool:
        with op.log_path.open(errors="replace") as f:
            f.seek(log_start)
            return PRUNED in f.read()

    wait_until(told, "the operator to find the Webservice gone after kopf listed anew", 60, 1.0)
    kubectl("delete", "deployment", "gone", "-n", ns, "--wait=true")
    # The operator is told of the deletion, and its Webservice is gone: nothing is
    # deployed again (before the fix, the Deployment was back within a second).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert deployment("gone") is None, op.log_tail()
        time.sleep(1)

    # The Webservice still there is reconciled as before: its deleted Deployment comes
    # back, and it is Ready again.
    old_uid = deployment("keep")["metadata"]["uid"]  # type: ignore[index]
    kubectl("delete", "deployment", "keep", "-n", ns, "--wait=true")
    wait_until(
        lambda: (d := deployment("keep")) is not None and d["metadata"]["uid"] != old_uid,
        "the operator to deploy the Webservice still there again",
    )
    kubectl("rollout", "status", "deployment/keep", "-n", ns, "--timeout=300s", timeout=400)
    kubectl(
        "wait",
        "--for=condition=Ready",
        "webservice/keep",
        "-n",
        ns,
        "--timeout=300s",
        timeout=400,
    )
    assert op.alive(), op.log_tail()
