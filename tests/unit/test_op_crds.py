"""The committed CRDs are what operator/kaci/crds/ renders, and keep the API contract."""

from __future__ import annotations

from pathlib import Path

import yaml
from kaci import crds

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_are_generated() -> None:
    for name, crd in crds.all_crds().items():
        assert (ROOT / "crds" / name).read_text() == crds.render(crd), (
            f"crds/{name} is stale: run `python -m kaci.crds crds/`"
        )


def test_names_and_columns() -> None:
    docs = {n: yaml.safe_load((ROOT / "crds" / n).read_text()) for n in crds.all_crds()}
    expect = {
        "kaci.dev_models.yaml": ("Model", "models", "kmod", ["Version", "Digest"]),
        "kaci.dev_images.yaml": ("Image", "images", "kimg", ["Version", "State", "Location"]),
        "kaci.dev_webservices.yaml": (
            "Webservice",
            "webservices",
            "kws",
            ["State", "CPU", "Memory", "URI"],
        ),
    }
    for file, (kind, plural, short, cols) in expect.items():
        spec = docs[file]["spec"]
        assert spec["group"] == "kaci.dev"
        assert spec["scope"] == "Namespaced"
        assert spec["names"]["kind"] == kind
        assert spec["names"]["plural"] == plural
        assert spec["names"]["shortNames"] == [short]
        assert spec["names"]["categories"] == ["kaci"]
        (version,) = spec["versions"]
        assert version["name"] == "v1alpha1"
        assert version["subresources"]["status"] == {}
        # Only a Webservice scales (`kubectl scale webservice/x`): its fixed replica count.
        assert ("scale" in version["subresources"]) == (kind == "Webservice")
        names = [c["name"] for c in version["additionalPrinterColumns"]]
        assert names == [*cols, "Age"] or names[: len(cols)] == cols


def test_exactly_one_rules_name_every_source() -> None:
    ws = crds.webservice_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = ws["properties"]["spec"]["x-kubernetes-validations"]
    assert "has(self.modelFiles)" in rules[0]["rule"]
    assert "has(self.models)" in rules[0]["rule"]
    assert "has(self.image)" in rules[0]["rule"]
    source = crds.model_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]["properties"]["source"]
    assert set(source["properties"]) == {"configMap", "url", "pvc", "image"}


def test_peering_crds_are_the_kinds_kopf_looks_for() -> None:
    """kopf finds its peering resources as kopf.dev/v1 clusterkopfpeerings (cluster-wide
    operators) and kopfpeerings (namespaced ones), and writes their status itself."""
    from kopf._cogs.structs import references

    docs = {n: yaml.safe_load((ROOT / "crds" / n).read_text()) for n in crds.all_crds()}
    for file, selector, scope in [
        ("kopf.dev_clusterkopfpeerings.yaml", references.CLUSTER_PEERINGS_K, "Cluster"),
        ("kopf.dev_kopfpeerings.yaml", references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ]:
        spec = docs[file]["spec"]
        names = spec["names"]
        resource = references.Resource(
            group=spec["group"],
            version=spec["versions"][0]["name"],
            plural=names["plural"],
            kind=names["kind"],
            singular=names["singular"],
            namespaced=spec["scope"] == "Namespaced",
        )
        assert selector.check(resource), (file, selector)
        assert spec["scope"] == scope
        (version,) = spec["versions"]
        # No status subresource: kopf then patches the object itself (see crds.peering_crd).
        assert "subresources" not in version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        peer = status["additionalProperties"]
        assert set(peer["properties"]) == {"priority", "lifetime", "lastseen"}
        assert peer["x-kubernetes-preserve-unknown-fields"] is True
        # Never removed with kaci's own CRDs (other kopf operators may share them).
        assert docs[file]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kopf"
