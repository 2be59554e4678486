"""The chart's shell scripts parse, and hack/sync-crds.sh keeps the copies in step."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("hack/demo.sh", "hack/build-operator-image.sh", "hack/sync-crds.sh")


def test_scripts_parse_and_are_executable() -> None:
    for script in SCRIPTS:
        path = ROOT / script
        assert path.stat().st_mode & 0o111, f"{script} is not executable"
        proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


def test_sync_crds_copies_and_prunes(tmp_path: Path) -> None:
    """Run the real script on a copy of the tree's crds/ and chart folders."""
    (tmp_path / "hack").mkdir()
    shutil.copy(ROOT / "hack" / "sync-crds.sh", tmp_path / "hack")
    shutil.copytree(ROOT / "crds", tmp_path / "crds")
    chart_crds = tmp_path / "charts" / "kaci" / "crds"
    chart_crds.mkdir(parents=True)
    (chart_crds / "kaci.dev_gone.yaml").write_text("stale\n")
    (chart_crds / "kaci.dev_models.yaml").write_text("old\n")
    subprocess.run(["bash", str(tmp_path / "hack" / "sync-crds.sh")], check=True)
    source = {p.name: p.read_bytes() for p in (tmp_path / "crds").glob("*.yaml")}
    copy = {p.name: p.read_bytes() for p in chart_crds.glob("*.yaml")}
    assert copy == source
    assert len(source) == 5  # kaci's three kinds and kopf's two peering kinds


def test_build_script_also_pushes_the_charts_app_version(tmp_path: Path) -> None:
    """The real script with a stand-in `docker` on PATH that records its calls: the
    image goes out under its content-hash tag (printed last) and under the chart's
    appVersion, the tag `helm install` pulls with no --set."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        # `image inspect --format {{.Id}}` of the base image: an id; the built ref exists.
        'case "$1 $2" in "image inspect") echo sha256:base ;; esac\n'
    )
    fake.chmod(0o755)
    proc = subprocess.run(
        [str(ROOT / "hack" / "build-operator-image.sh")],
        env={"PATH": f"{fake.parent}:/usr/bin:/bin", "REGISTRY": "reg.example:5000"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    ref = proc.stdout.strip().splitlines()[-1]
    repo, tag = ref.rsplit(":", 1)
    assert repo == "reg.example:5000/kaci/operator"
    assert len(tag) == 16
    app_version = yaml.safe_load((ROOT / "charts" / "kaci" / "Chart.yaml").read_text())[
        "appVersion"
    ]
    lines = calls.read_text().splitlines()
    assert f"push {ref}" in lines
    assert f"tag {ref} {repo}:{app_version}" in lines
    assert f"push {repo}:{app_version}" in lines
    # APP_VERSION_TAG=0: the hash tag only.
    calls.unlink()
    proc = subprocess.run(
        [str(ROOT / "hack" / "build-operator-image.sh")],
        env={
            "PATH": f"{fake.parent}:/usr/bin:/bin",
            "REGISTRY": "reg.example:5000",
            "APP_VERSION_TAG": "0",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [c for c in calls.read_text().splitlines() if c.startswith(("push", "tag"))] == [
        f"push {ref}"
    ]
