"""Every render of the chart is valid for the real API server (server-side dry run).

`helm template` with the default values and with each charts/kaci/ci/*.yaml,
CRDs included (installed for real first, from crds/: a dry run does not create
the peering kinds the render's peering objects need), is sent to the local
cluster's API server with
`kubectl apply --dry-run=server`: schemas, defaulting, admission (Pod Security)
and RBAC escalation checks all run, and nothing is stored. The renders that watch
listed namespaces watch two of this module's own instead of the ci file's names,
so that no other run's (or user's) namespaces are created or deleted here.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CONTEXT = "kaci-local"  # tests/cluster/conftest.py refuses any other context
Kubectl = Callable[..., str]  # the `kubectl` fixture of tests/cluster/conftest.py
CHART = ROOT / "charts" / "kaci"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["helm", f"--kubeconfig={KUBECONFIG}", f"--kube-context={CONTEXT}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def watched_namespaces(make_namespace: Callable[[str], str]) -> tuple[str, ...]:
    """Two namespaces of this module's own (the session deletes them)."""
    suffix = secrets.token_hex(3)
    return tuple(make_namespace(f"t-chart-dryrun-{side}-{suffix}") for side in ("a", "b"))


def _watch_args(values: Path | None, watched: tuple[str, ...]) -> list[str]:
    """A ci file that names watchNamespaces gets this module's namespaces instead, and one
    that puts the dashboard in another namespace gets one of them (it must exist)."""
    given = (yaml.safe_load(values.read_text()) or {}) if values is not None else {}
    args = []
    if given.get("watchNamespaces"):
        args += ["--set", f"watchNamespaces={{{','.join(watched)}}}"]
    if (given.get("dashboard") or {}).get("namespace"):
        args += ["--set", f"dashboard.namespace={watched[0]}"]
    return args


@pytest.mark.parametrize(
    "values", [None, *CI_VALUES], ids=["default", *(f.stem for f in CI_VALUES)]
)
def test_render_is_accepted_by_the_api_server(
    values: Path | None,
    namespace: str,
    watched_namespaces: tuple[str, ...],
    kubectl: Kubectl,
    crds: None,
) -> None:
    extra = ["-f", str(values), *_watch_args(values, watched_namespaces)] if values else []
    proc = helm("template", "kaci", str(CHART), "--include-crds", "--namespace", namespace, *extra)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert any(d["kind"] == "Deployment" for d in docs)
    # kaci's three kinds and kopf's two peering kinds.
    assert sum(d["kind"] == "CustomResourceDefinition" for d in docs) == 5
    out = kubectl("apply", "--dry-run=server", "-f", "-", input=proc.stdout)
    # kubectl names each object it would create or change: all of them got through.
    assert out.count("(server dry run)") == len(docs), out


def test_install_notes_say_how_to_use_and_uninstall(namespace: str) -> None:
    proc = helm("install", "kaci", str(CHART), "--dry-run=client", "--namespace", namespace)
    assert proc.returncode == 0, proc.stderr
    # The default (buildkit): the notes name the Pod Security level buildkitd needs.
    assert "rootless" in proc.stdout
    assert "pod-security.kubernetes.io/enforce=privileged" in proc.stdout
    assert "WARNING" not in proc.stdout
    # The docker driver, no socket group given: the notes say how to find and set it.
    docker = ["--set", "builder.driver=docker", "--set", "buildkit.enabled=false"]
    proc = helm("install", "kaci", str(CHART), "--dry-run=client", "-n", namespace, *docker)
    assert proc.returncode == 0, proc.stderr
    assert "stat -c %g /var/run/docker.sock" in proc.stdout
    assert "podSecurityContext.supplementalGroups" in proc.stdout
    proc = helm(
        "install",
        "kaci",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        namespace,
        *docker,
        "--set",
        "podSecurityContext.supplementalGroups[0]=107",
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stdout
    assert "helm uninstall kaci" in proc.stdout
    assert "kubectl wait --for=condition=Ready webservice" in proc.stdout
