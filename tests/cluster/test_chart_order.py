"""The README's two commands in either order on one machine: a release shaped like
`make demo`'s beside the chart tests' releases, and one release name in two namespaces.

Release A has the demo's shape (hack/demo.sh: ci/local-values.yaml, the built image's
hash tag, the Docker socket's group; cluster-wide RBAC, every namespace watched, a
ClusterKopfPeering, one Pod) and the demo's release name `kaci`, in a namespace of this
module's own. Release B is `kaci` too, in another namespace, shaped like the chart
install test's (namespaced RBAC, one watched namespace). Helm installs both, since
their cluster-scoped objects have names of their own; each operator builds and serves
its own Webservice; B's uninstall leaves A working. Release C has the chart's default
values (no image value at all): the image the chart names by default exists and runs.
Every release has an operator instance of its own (see test_chart_support), and when a
user's `make demo` release (`kaci` in `kaci-system`) is on the cluster, the last test
checks that it is untouched.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from support.chart import (  # type: ignore[import-not-found,unused-ignore]
    CHART,
    ROOT,
    ChartRelease,
    Kubectl,
    build_operator_image,
    demo_args,
    deploy_tiny,
    helm,
)

# hack/demo.sh's release; KACI_TEST_DEMO_RELEASE=<namespace>/<release> names another
# (a demo-shaped release someone installed by hand under names of their own).
DEMO_NAMESPACE, DEMO_RELEASE = os.environ.get("KACI_TEST_DEMO_RELEASE", "kaci-system/kaci").split(
    "/", 1
)
AUDIT_LOG = ROOT / ".cluster" / "logs" / "audit.log"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass(frozen=True)
class Side:
    release: ChartRelease
    workloads: str  # the namespace its Webservice goes into


@dataclass(frozen=True)
class Demo:
    """A user's `make demo` release found on the cluster before this module ran."""

    deployment_uid: str
    cluster_roles: dict[str, str]  # name -> uid, the release's own


def _cluster_objects(rel: ChartRelease) -> dict[tuple[str, str], dict[str, Any]]:
    """The release's cluster-scoped objects, (kind, name) -> object as installed."""
    scoped = {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}
    return {(d["kind"], d["metadata"]["name"]): d for d in rel.manifest() if d["kind"] in scoped}


def _demo(kubectl: Kubectl) -> Demo | None:
    if helm("status", DEMO_RELEASE, "-n", DEMO_NAMESPACE, check=False).returncode != 0:
        return None
    dep = json.loads(kubectl("get", "deployment", DEMO_RELEASE, "-n", DEMO_NAMESPACE, "-o", "json"))
    roles = json.loads(
        kubectl(
            "get", "clusterrole", "-l", f"app.kubernetes.io/instance={DEMO_RELEASE}", "-o", "json"
        )
    )["items"]
    mine = [
        r
        for r in roles
        if (r["metadata"].get("annotations") or {}).get("meta.helm.sh/release-namespace")
        == DEMO_NAMESPACE
    ]
    return Demo(
        deployment_uid=dep["metadata"]["uid"],
        cluster_roles={r["metadata"]["name"]: r["metadata"]["uid"] for r in mine},
    )


@pytest.fixture(scope="module")
def demo_before(kubectl: Kubectl) -> Demo | None:
    return _demo(kubectl)


@pytest.fixture(scope="module")
def sides(
    kubectl: Kubectl, make_namespace: Callable[[str], str], demo_before: Demo | None
) -> Iterator[tuple[Side, Side]]:
    suffix = secrets.token_hex(3)
    ref = build_operator_image()
    a = ChartRelease(
        name="kaci",
        namespace=make_namespace(f"t-chart-order-a-{suffix}"),
        instance=f"order-a-{suffix}",
        kubectl=kubectl,
        args=demo_args(ref),
    )
    b_workloads = make_namespace(f"t-chart-order-b-ws-{suffix}")
    b = ChartRelease(
        name="kaci",
        namespace=make_namespace(f"t-chart-order-b-{suffix}"),
        instance=f"order-b-{suffix}",
        kubectl=kubectl,
        args=[
            *demo_args(ref),
            "--set",
            "rbac.namespaced=true",
            "--set",
            f"watchNamespaces={{{b_workloads}}}",
        ],
    )
    made: list[ChartRelease] = []
    try:
        for rel in (a, b):
            made.append(rel)  # first: a failed `helm install --wait` leaves a release
            rel.install()
        yield (
            Side(a, make_namespace(f"t-chart-order-a-ws-{suffix}")),
            Side(b, b_workloads),
        )
    finally:
        for rel in made:
            rel.uninstall(check=False)


def test_one_release_name_in_two_namespaces_installs_twice(sides: tuple[Side, Side]) -> None:
    a, b = (s.release for s in sides)
    objects_a, objects_b = _cluster_objects(a), _cluster_objects(b)
    assert {k for k, _ in objects_a} == {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}
    assert {k for k, _ in objects_b} == {"ClusterRole", "ClusterRoleBinding"}  # discovery only
    assert not set(objects_a) & set(objects_b)
    for rel, objects in ((a, objects_a), (b, objects_b)):
        for (kind, _), doc in objects.items():
            if kind == "ClusterRoleBinding":
                assert doc["subjects"] == [
                    {"kind": "ServiceAccount", "name": "kaci", "namespace": rel.namespace}
                ]
        for pod in rel.pods():
            assert pod["status"]["containerStatuses"][0]["ready"] is True, rel.log()


def test_each_operator_builds_and_serves_its_own_webservice(sides: tuple[Side, Side]) -> None:
    for side in sides:
        deploy_tiny(side.release, side.workloads, "tiny")
    a, b = sides
    # Each operator wrote to its own objects only, as the API server's audit log tells:
    # A watches every namespace and still left B's alone.
    writes_a, writes_b = _writes_by(a.release), _writes_by(b.release)
    assert a.workloads in writes_a, writes_a
    assert b.workloads not in writes_a, writes_a
    assert b.workloads in writes_b, writes_b
    assert a.workloads not in writes_b, writes_b


def _writes_by(rel: ChartRelease) -> set[str]:
    """The namespaces in which the release's ServiceAccount wrote anything (audit log)."""
    user = f"system:serviceaccount:{rel.namespace}:kaci"
    namespaces = set()
    with AUDIT_LOG.open() as audit:
        for line in audit:
            if user not in line:
                continue
            event = json.loads(line)
            if event["user"]["username"] == user and event["verb"] in WRITES:
                namespaces.add((event.get("objectRef") or {}).get("namespace", ""))
    return namespaces


def _notes_warning(rel: ChartRelease, *args: str) -> str:
    """NOTES.txt's overlap warning for a would-be release beside `rel`'s (a server-side
    dry run: lookup reads the cluster, nothing is stored)."""
    out = helm(
        "install", "kaci-probe", str(CHART), "-n", rel.namespace, "--dry-run=server", *args
    ).stdout
    notes = out.split("NOTES:", 1)[1]
    return (
        notes.split("WARNING: another kaci operator", 1)[1] if "WARNING: another" in notes else ""
    )


def test_install_notes_warn_of_an_operator_acting_on_the_same_objects(
    sides: tuple[Side, Side],
) -> None:
    a, b = sides
    # A watches every namespace: the same instance anywhere overlaps it.
    warning = _notes_warning(a.release, "--set", f"operator.instance={a.release.instance}")
    assert f"{a.release.namespace}/kaci" in warning
    assert f"{b.release.namespace}/kaci" not in warning
    # B watches one namespace: only a release watching that one (or all) overlaps it.
    b_args = ["--set", f"operator.instance={b.release.instance}"]
    warning = _notes_warning(a.release, *b_args)
    assert f"{b.release.namespace}/kaci" in warning
    warning = _notes_warning(
        a.release,
        *b_args,
        "--set",
        "rbac.namespaced=true",
        "--set",
        f"watchNamespaces={{{a.workloads}}}",
    )
    assert f"{b.release.namespace}/kaci" not in warning
    # An instance of its own: no overlap with anyone.
    assert (
        _notes_warning(a.release, "--set", f"operator.instance=fresh-{secrets.token_hex(3)}") == ""
    )


def test_uninstalling_one_leaves_the_other_working(
    sides: tuple[Side, Side], kubectl: Kubectl
) -> None:
    a, b = sides
    before = {name: doc for (_, name), doc in _cluster_objects(a.release).items()}
    pods_before = {p["metadata"]["uid"] for p in a.release.pods()}
    b.release.uninstall()
    assert b.release.pods() == []
    for (kind, name), _ in _cluster_objects(a.release).items():
        got = json.loads(kubectl("get", kind.lower(), name, "-o", "json"))
        assert got["metadata"]["name"] in before
    assert {p["metadata"]["uid"] for p in a.release.pods()} == pods_before
    # A still builds (a new image) and serves.
    deploy_tiny(a.release, a.workloads, "after-uninstall")
    for pod in a.release.pods():
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0, a.release.log()


def test_default_values_pull_an_image_that_exists(
    sides: tuple[Side, Side], kubectl: Kubectl, make_namespace: Callable[[str], str]
) -> None:
    """`helm install` with no --set but this test's operator instance (so that it acts on
    nothing of anyone else's): the chart's default image (the appVersion tag, which
    hack/build-operator-image.sh pushed in the `sides` fixture) is pulled and runs."""
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    suffix = secrets.token_hex(3)
    c = ChartRelease(
        name="kaci-defaults",
        namespace=make_namespace(f"t-chart-order-c-{suffix}"),
        instance=f"order-c-{suffix}",
        kubectl=kubectl,
        # The local cluster has no StorageClass: buildkitd's cache claim would never bind.
        args=["--set", "buildkit.cache.persistence=false"],
    )
    try:
        c.install(timeout="3m")
        (pod,) = c.pods()
        assert (
            pod["spec"]["containers"][0]["image"] == f"127.0.0.1:5000/kaci/operator:{app_version}"
        )
        assert pod["status"]["containerStatuses"][0]["ready"] is True, c.log()
    finally:
        c.uninstall(check=False)


def test_a_users_demo_release_is_left_alone(
    sides: tuple[Side, Side], kubectl: Kubectl, demo_before: Demo | None
) -> None:
    """Runs last: after the installs, deploys and uninstalls above."""
    if demo_before is None:
        pytest.skip(f"no `make demo` release ({DEMO_RELEASE} in {DEMO_NAMESPACE}) on this cluster")
    after = _demo(kubectl)
    assert after is not None, "the demo's release is gone"
    assert after.deployment_uid == demo_before.deployment_uid
    assert after.cluster_roles == demo_before.cluster_roles
    available = kubectl(
        "get",
        "deployment",
        DEMO_RELEASE,
        "-n",
        DEMO_NAMESPACE,
        "-o",
        "jsonpath={.status.availableReplicas}",
    )
    assert available not in ("", "0"), available
