"""The chart installed with real helm on the local cluster, the operator in its Pod.

One release for the module, in order: install (operator image built and pushed
by hack/build-operator-image.sh, the node's Docker socket mounted, two operator
Pods peering through the chart's KopfPeering), the MNIST walkthrough the three
Azure ways, RBAC (no 403 for the chart's ServiceAccount in the API server's audit
log or in the operators' logs), only one of the two Pods acting and the other
taking over when it is deleted, `helm upgrade` that rolls the operators and
leaves Webservice Pods alone, `helm uninstall` that leaves CRDs and users' objects.

The release runs with `rbac.namespaced=true`, watches only this module's
namespace and handles only objects labelled for its own operator instance
(`operator.instance`), so it never touches objects of other tests or of a user's
release (`make demo`'s operator, which handles unlabelled objects everywhere,
leaves these alone); the cluster-wide RBAC render is dry-run in
test_chart_dryrun.py and installed beside another release in test_chart_order.py.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import pytest
import yaml
from support.chart import demo_args  # type: ignore[import-not-found,unused-ignore]
from support.kaci_operator import INSTANCE_LABEL, wait_until  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kaci"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
AUDIT_LOG = ROOT / ".cluster" / "logs" / "audit.log"
CONTEXT = "kaci-local"  # tests/cluster/conftest.py refuses any other context
RELEASE = "kaci-t"
WEBSERVICES = ("aci-mnist-1", "aci-mnist-2", "aci-mnist-3")
REPLICAS = 2  # operator Pods: one acts, one waits (kopf peering)
RESUMED = "Resuming operations after the pause"  # kopf's log line when a peer starts acting
Kubectl = Callable[..., str]  # the `kubectl` fixture of tests/cluster/conftest.py


@dataclass(frozen=True)
class Release:
    operator_ns: str
    ns: str  # where the walkthrough goes
    image: str
    service_account: str
    instance: str  # operator.instance: the label value of this release's objects

    @property
    def peering(self) -> str:
        """The chart's peering object: named for the release and its namespace."""
        return f"{RELEASE}-{self.operator_ns}"


def helm(*args: str, timeout: float = 600) -> str:
    cmd = ["helm", f"--kubeconfig={KUBECONFIG}", f"--kube-context={CONTEXT}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def get(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def pod_log(kubectl: Kubectl, rel: Release, pod: str) -> str:
    try:
        return kubectl("logs", "-n", rel.operator_ns, pod, "--tail=-1")
    except Exception as exc:  # the log is a diagnostic: its absence must not hide the failure
        return f"(no operator log: {exc})"


def operator_log(kubectl: Kubectl, rel: Release) -> str:
    """Every operator Pod's log, each under its name."""
    return "\n".join(
        f"--- {name}\n{pod_log(kubectl, rel, name)}"
        for name in (p["metadata"]["name"] for p in operator_pods(kubectl, rel))
    )


def operator_pods(kubectl: Kubectl, rel: Release) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=kaci"
    pods: list[dict[str, Any]] = get(kubectl, "pods", "-n", rel.operator_ns, "-l", selector)[
        "items"
    ]
    return [p for p in pods if "deletionTimestamp" not in p["metadata"]]


def score(kubectl: Kubectl, ns: str, name: str, request: Path) -> Any:
    uri = f"/api/v1/namespaces/{ns}/services/{name}:80/proxy/score"
    return json.loads(kubectl("create", "--raw", uri, "-f", str(request)))


def install_args(rel: Release) -> list[str]:
    return [
        "--namespace",
        rel.operator_ns,
        # As the demo installs it: the chart's rootless buildkitd builds.
        *demo_args(rel.image),
        "--set",
        "rbac.namespaced=true",
        "--set",
        f"watchNamespaces={{{rel.ns}}}",
        "--set",
        f"replicaCount={REPLICAS}",
        "--set",
        f"operator.instance={rel.instance}",
        "--wait",
        "--timeout",
        "5m",
    ]


@pytest.fixture(scope="module")
def release(kubectl: Kubectl, make_namespace: Callable[[str], str]) -> Iterator[Release]:
    build = subprocess.run(
        [str(ROOT / "hack" / "build-operator-image.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    image = build.stdout.strip().splitlines()[-1]
    suffix = secrets.token_hex(3)
    rel = Release(
        operator_ns=f"t-chart-install-{suffix}",
        ns=f"t-chart-install-ws-{suffix}",
        image=image,
        service_account=RELEASE,  # fullname: the release name already contains "kaci"
        instance=f"chart-{suffix}",
    )
    # buildkitd runs beside the operator: its namespace is at Pod Security's privileged
    # level (the chart README's rule); the Webservices' stays as the cluster has it.
    make_namespace(rel.operator_ns, {"pod-security.kubernetes.io/enforce": "privileged"})
    make_namespace(rel.ns)
    try:
        helm("install", RELEASE, str(CHART), *install_args(rel))
        yield rel
    finally:
        subprocess.run(
            [
                "helm",
                f"--kubeconfig={KUBECONFIG}",
                f"--kube-context={CONTEXT}",
                *("uninstall", RELEASE, "-n", rel.operator_ns, "--ignore-not-found", "--wait"),
            ],
            capture_output=True,
            check=False,
            timeout=300,
        )
        for ns in (rel.ns, rel.operator_ns):
            kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def labelled(doc: dict[str, Any], rel: Release) -> dict[str, Any]:
    """For this release's operator instance only."""
    doc["metadata"].setdefault("labels", {})[INSTANCE_LABEL] = rel.instance
    return doc


def label_walkthrough(folder: Path, rel: Release) -> Path:
    """The walkthrough's kustomization, with every object labelled for `rel`'s operator."""
    kustomization = folder / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    doc["labels"] = [{"pairs": {INSTANCE_LABEL: rel.instance}}]
    kustomization.write_text(yaml.safe_dump(doc))
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The walkthrough folder with a freshly trained model (train.py writes beside it)."""
    folder = tmp_path_factory.mktemp("mnist")
    shutil.copytree(ROOT / "examples" / "mnist", folder, dirs_exist_ok=True)
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(folder / "train.py"), "--out", str(folder)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return folder


def argocd_health() -> ModuleType:
    """The unit tier's Lua runner, reused on live objects."""
    path = ROOT / "tests" / "unit" / "test_chart_argocd_health.py"
    spec = importlib.util.spec_from_file_location("kaci_argocd_health", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_operator_runs_in_its_pod_non_root_with_the_host_docker_socket(
    release: Release, kubectl: Kubectl
) -> None:
    pods = operator_pods(kubectl, release)
    assert len(pods) == REPLICAS
    for pod in pods:
        _check_operator_pod(pod, release, kubectl)


def _check_operator_pod(pod: dict[str, Any], release: Release, kubectl: Kubectl) -> None:
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True, operator_log(kubectl, release)
    assert status["restartCount"] == 0, operator_log(kubectl, release)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == release.service_account
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["containers"][0]["image"] == release.image
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    # The chart's buildkitd builds: nothing of the node is mounted (no Docker socket).
    assert [v for v in spec["volumes"] if "hostPath" in v] == []


def test_walkthrough_deploys_the_three_ways_and_scores(
    release: Release, kubectl: Kubectl, trained: Path
) -> None:
    kubectl("apply", "-k", str(label_walkthrough(trained, release)), "-n", release.ns)
    # A Webservice that cannot become ready: its Image does not exist.
    kubectl(
        "apply",
        "-n",
        release.ns,
        "-f",
        "-",
        input=json.dumps(
            labelled(
                {
                    "apiVersion": "kaci.dev/v1alpha1",
                    "kind": "Webservice",
                    "metadata": {"name": "no-such-image"},
                    "spec": {
                        "image": {"name": "does-not-exist"},
                        "deploymentConfig": {"cpuCores": 0.1, "memoryGb": 0.25},
                    },
                },
                release,
            )
        ),
    )
    try:
        kubectl(
            "wait",
            "--for=condition=Ready",
            *(f"webservice/{name}" for name in WEBSERVICES),
            "-n",
            release.ns,
            # Within pytest's 900 s per test: cold builds take 2-3 minutes here.
            "--timeout=780s",
            timeout=800,
        )
    except Exception as exc:
        pytest.fail(
            f"{exc}\n{kubectl('get', 'kaci', '-n', release.ns)}\n"
            + operator_log(kubectl, release)[-4000:]
        )
    model = joblib.load(trained / "sklearn_mnist_model.pkl")
    request = trained / "sample-request.json"
    expected = model.predict(json.loads(request.read_text())["data"]).tolist()
    assert len(expected) == 5
    for name in WEBSERVICES:
        ws = get(kubectl, "webservice", name, "-n", release.ns)
        assert ws["status"]["state"] == "Healthy"
        assert ws["status"]["scoringUri"] == (f"http://{name}.{release.ns}.svc.cluster.local/score")
        assert score(kubectl, release.ns, name, request) == expected


def test_status_follows_kstatus_and_argocd_reads_it(release: Release, kubectl: Kubectl) -> None:
    """observedGeneration and Ready on every object; Ready=False while not ready."""
    lua = argocd_health()
    for kind in ("model", "image", "webservice"):
        for obj in get(kubectl, kind, "-n", release.ns)["items"]:
            name = f"{kind}/{obj['metadata']['name']}"
            status = obj["status"]
            generation = obj["metadata"]["generation"]
            assert status["observedGeneration"] == generation, name
            (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
            assert ready["observedGeneration"] == generation, name
            health, message = lua.health(kind.capitalize(), obj)
            if obj["metadata"]["name"] == "no-such-image":
                assert ready["status"] == "False", name
                assert status["state"] != "Healthy", name
                assert health in ("Progressing", "Degraded"), (name, message)
            else:
                assert ready["status"] == "True", name
                assert health == "Healthy", (name, message)


def test_operator_got_no_forbidden_answer(release: Release, kubectl: Kubectl) -> None:
    user = f"system:serviceaccount:{release.operator_ns}:{release.service_account}"
    mine = []
    with AUDIT_LOG.open() as audit:
        for line in audit:
            if user not in line:
                continue
            event = json.loads(line)
            if event["user"]["username"] == user:
                mine.append(event)
    assert len(mine) > 20, f"no audit events for {user}: is the audit log on?"
    forbidden = [
        f"{e['verb']} {e['requestURI']}" for e in mine if e["responseStatus"]["code"] == 403
    ]
    assert forbidden == []
    log = operator_log(kubectl, release)
    assert "Forbidden" not in log
    assert "Not enough permissions" not in log


def peering_status(kubectl: Kubectl, rel: Release) -> dict[str, Any]:
    """The chart's KopfPeering in the watched namespace: Pod name -> its keep-alive."""
    status: dict[str, Any] = get(kubectl, "kopfpeering", rel.peering, "-n", rel.ns).get("status")
    return status or {}


def leader_and_standby(kubectl: Kubectl, rel: Release) -> tuple[str, str]:
    """Both operator Pods keep alive in the peering object; the higher priority leads."""
    names = {p["metadata"]["name"] for p in operator_pods(kubectl, rel)}

    def both() -> dict[str, Any] | None:
        status = peering_status(kubectl, rel)
        return status if names <= set(status) else None

    status = wait_until(both, f"keep-alives of {names}")
    leader, standby = sorted(names, key=lambda n: status[n]["priority"], reverse=True)
    return leader, standby


def test_two_operator_pods_one_acts_and_the_other_takes_over(
    release: Release, kubectl: Kubectl
) -> None:
    leader, standby = leader_and_standby(kubectl, release)
    objects = "first pass over "  # the operator's line when it first looks at an object
    assert RESUMED in pod_log(kubectl, release, leader)
    assert objects in pod_log(kubectl, release, leader)
    # The waiting Pod never started acting: no object handled, not even looked at.
    # (Started at the same moment as the leader, kopf may resume it for the instant
    # before the leader's first keep-alive, and pause it again; kaci's queue waits out
    # a replica's first seconds, so nothing is handled then either.)
    standby_log = pod_log(kubectl, release, standby)
    assert objects not in standby_log, standby_log[-3000:]
    resumed_before = standby_log.count(RESUMED)

    # The leader stops (a Pod deletion: SIGTERM): its keep-alive goes with it, and the
    # waiting Pod takes over at once; the Deployment's new Pod waits in turn.
    deleted = time.time()
    kubectl("delete", "pod", leader, "-n", release.operator_ns, "--wait=false")
    wait_until(
        lambda: pod_log(kubectl, release, standby).count(RESUMED) > resumed_before,
        "the standby to take over",
    )
    took_over = [
        line for line in pod_log(kubectl, release, standby).splitlines() if RESUMED in line
    ][-1]
    stamp = datetime.datetime.strptime(took_over[:23], "%Y-%m-%d %H:%M:%S,%f")
    print(f"\nhand-over after the leader Pod was deleted: {stamp.timestamp() - deleted:.1f} s")
    wait_until(
        lambda: (
            len(operator_pods(kubectl, release)) == REPLICAS
            and leader not in {p["metadata"]["name"] for p in operator_pods(kubectl, release)}
        ),
        "the Deployment's replacement Pod",
    )
    new_leader, new_standby = leader_and_standby(kubectl, release)
    assert new_leader == standby
    # The new leader acts: a spec change is observed.
    kubectl(
        "patch",
        "webservice",
        "no-such-image",
        "-n",
        release.ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"deploymentConfig": {"description": "changed after hand-over"}}}),
    )
    generation = get(kubectl, "webservice", "no-such-image", "-n", release.ns)["metadata"][
        "generation"
    ]
    kubectl(
        "wait",
        f"--for=jsonpath={{.status.observedGeneration}}={generation}",
        "webservice/no-such-image",
        "-n",
        release.ns,
        "--timeout=120s",
    )
    assert objects not in pod_log(kubectl, release, new_standby)


def test_upgrade_rolls_the_operator_and_leaves_webservices_serving(
    release: Release, kubectl: Kubectl, trained: Path
) -> None:
    old_operators = {p["metadata"]["uid"] for p in operator_pods(kubectl, release)}
    selector = "kaci.dev/webservice"
    before = {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in get(kubectl, "pods", "-n", release.ns, "-l", selector)["items"]
    }
    assert len(before) == len(WEBSERVICES)
    helm("upgrade", RELEASE, str(CHART), *install_args(release), "--set", "operator.verbose=true")
    new_operators = operator_pods(kubectl, release)
    assert len(new_operators) == REPLICAS
    for new_operator in new_operators:
        assert new_operator["metadata"]["uid"] not in old_operators
        assert "--verbose" in new_operator["spec"]["containers"][0]["args"]
        assert new_operator["status"]["containerStatuses"][0]["ready"] is True  # helm --wait
    after = {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in get(kubectl, "pods", "-n", release.ns, "-l", selector)["items"]
    }
    assert after == before
    request = trained / "sample-request.json"
    for name in WEBSERVICES:
        assert len(score(kubectl, release.ns, name, request)) == 5
    # The new operator resumes the objects and finds nothing to change.
    kubectl(
        "wait",
        "--for=condition=Ready",
        *(f"webservice/{name}" for name in WEBSERVICES),
        "-n",
        release.ns,
        "--timeout=120s",
    )
    after_resume = {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in get(kubectl, "pods", "-n", release.ns, "-l", selector)["items"]
    }
    assert after_resume == before


def test_uninstall_keeps_crds_and_users_objects(
    release: Release, kubectl: Kubectl, trained: Path
) -> None:
    helm("uninstall", RELEASE, "-n", release.operator_ns, "--wait")
    assert get(kubectl, "deployments", "-n", release.operator_ns)["items"] == []
    assert operator_pods(kubectl, release) == []
    crds = {c["metadata"]["name"] for c in get(kubectl, "crd")["items"]}
    assert {"models.kaci.dev", "images.kaci.dev", "webservices.kaci.dev"} <= crds
    names = {w["metadata"]["name"] for w in get(kubectl, "webservice", "-n", release.ns)["items"]}
    assert set(WEBSERVICES) <= names
    assert get(kubectl, "model", "sklearn-mnist", "-n", release.ns)["status"]["version"] >= 1
    request = trained / "sample-request.json"
    for name in WEBSERVICES:
        assert len(score(kubectl, release.ns, name, request)) == 5
