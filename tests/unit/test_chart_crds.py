"""The chart carries byte-identical copies of crds/ (the one source).

Helm installs charts/kaci/crds/ before anything else and never deletes it on
`helm uninstall`; hack/sync-crds.sh refreshes the copies.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "crds"
CHART_COPY = ROOT / "charts" / "kaci" / "crds"


def test_chart_crds_are_byte_identical_copies_of_crds() -> None:
    source = {p.name: p.read_bytes() for p in SOURCE.glob("*.yaml")}
    copy = {p.name: p.read_bytes() for p in CHART_COPY.glob("*.yaml")}
    assert set(copy) == set(source), "run hack/sync-crds.sh"
    for name, data in source.items():
        assert copy[name] == data, f"{name} differs: run hack/sync-crds.sh"


def test_chart_ships_the_three_kinds_and_kopfs_peering_kinds() -> None:
    kinds = {}
    for path in CHART_COPY.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "CustomResourceDefinition"
        kinds[doc["spec"]["names"]["kind"]] = doc
    assert sorted(kinds) == ["ClusterKopfPeering", "Image", "KopfPeering", "Model", "Webservice"]
    for kind in ("ClusterKopfPeering", "KopfPeering"):
        assert kinds.pop(kind)["spec"]["group"] == "kopf.dev"
    for crd in kinds.values():
        assert crd["spec"]["group"] == "kaci.dev"
        assert crd["spec"]["scope"] == "Namespaced"
        assert "kaci" in crd["spec"]["names"]["categories"]
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1alpha1"
        assert "status" in version["subresources"]
        # Helm would delete the CRDs (and every user's object) on uninstall if they
        # were templates; the crds/ folder is never deleted, so no hook or policy
        # annotation may turn them into managed templates.
        assert "helm.sh/hook" not in crd["metadata"].get("annotations", {})
