"""The chart's shell scripts parse, and hack/sync-crds.sh keeps the copies in step."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
