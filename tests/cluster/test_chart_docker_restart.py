"""The Docker engine restarts under the chart's in-cluster operator (the `docker` builder
driver, the node's socket): the operator builds again by itself, with no hand on its Pod.

A restarted dockerd makes a new socket file. The chart mounts the socket's folder (not
the file: a file mount would keep the dead socket, and every build would answer
EngineUnavailable until someone deleted the Pod), so the running operator reaches the
new engine. Shown end to end: a release shaped like `make demo`'s (test_chart_support,
an operator instance of its own) builds and serves one Webservice; dockerd is stopped
by the PID hack/cluster.sh recorded (SIGTERM, only when that process is the cluster's
own) and started again by the owning clone's `hack/cluster.sh docker`; then a new Image
(a build the engine has never done) is built and served by the same operator Pod, which
was neither restarted nor replaced.

The restart cuts every other build on the machine's engine: run this test alone. The
engine is stopped only once the first Webservice serves, so a node too busy to schedule
the release (it needs ~0.2 CPU of requests free) fails the test before any restart.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.chart import (  # type: ignore[import-not-found,unused-ignore]
    ChartRelease,
    Kubectl,
    build_operator_image,
    demo_args,
    deploy_tiny,
)
from support.faults import (  # type: ignore[import-not-found,unused-ignore]
    own_daemon_pid,
    start_docker_and_registry,
)
from support.kaci_operator import wait_until  # type: ignore[import-not-found,unused-ignore]

CLUSTER_DIR = Path(__file__).resolve().parents[2] / ".cluster"


@pytest.fixture(scope="module")
def release(kubectl: Kubectl, make_namespace: Callable[[str], str]) -> Iterator[ChartRelease]:
    suffix = secrets.token_hex(3)
    rel = ChartRelease(
        name="kaci",
        namespace=make_namespace(f"t-chart-docker-restart-{suffix}"),
        instance=f"restart-{suffix}",
        kubectl=kubectl,
        args=demo_args(build_operator_image(), driver="docker"),
    )
    try:
        # Inside: a failed `helm install --wait` leaves a release (and its cluster-scoped
        # objects) behind, which the uninstall removes.
        rel.install()
        yield rel
    finally:
        rel.uninstall(check=False)


def test_engine_restart_heals_without_touching_the_operator_pod(
    release: ChartRelease, kubectl: Kubectl, make_namespace: Callable[[str], str]
) -> None:
    ns = make_namespace(f"t-chart-docker-restart-ws-{secrets.token_hex(3)}")
    deploy_tiny(release, ns, "before")
    (pod,) = release.pods()
    uid = pod["metadata"]["uid"]
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]

    pid = own_daemon_pid(CLUSTER_DIR, "dockerd")
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(
            lambda: not Path(f"/proc/{pid}").exists() or None,
            "dockerd to stop",
            attempts=120,
            every_s=0.5,
        )
    finally:
        start_docker_and_registry()  # whatever happened: the engine is everyone's
    assert own_daemon_pid(CLUSTER_DIR, "dockerd") != pid  # a new engine, a new socket

    # A build the engine has never done, by the same operator process.
    deploy_tiny(release, ns, "after")
    (after,) = release.pods()
    assert after["metadata"]["uid"] == uid, release.log()
    assert after["status"]["containerStatuses"][0]["restartCount"] == restarts, release.log()
    image = json.loads(kubectl("get", "image", "after", "-n", ns, "-o", "json"))
    assert image["status"]["state"] == "Succeeded", image["status"]
    assert image["status"]["imageLocation"].split("@", 1)[1].startswith("sha256:")
