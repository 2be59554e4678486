from __future__ import annotations

import re

from kaci.render import names


def test_repo_component_lowercases_and_keeps_names_apart() -> None:
    assert names.repo_component("myimage1") == "myimage1"
    a = names.repo_component("sklearn_mnist")
    b = names.repo_component("sklearn-mnist")
    assert a != b
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", a)
    assert names.repo_component("Big.Model").startswith("big-model-")


def test_model_image_ref_uses_digest_prefix() -> None:
    ref = names.model_image_ref("127.0.0.1:5000", "ns", "m", "sha256:" + "ab" * 32)
    assert ref == "127.0.0.1:5000/kaci-models/ns/m:" + ("ab" * 8)


def test_uris_and_labels() -> None:
    assert names.scoring_uri("svc", "ns", "cluster.local") == (
        "http://svc.ns.svc.cluster.local/score"
    )
    labels = names.webservice_labels("w")
    assert labels["kaci.dev/webservice"] == "w"
    assert labels["app.kubernetes.io/managed-by"] == "kaci"
    assert labels["app.kubernetes.io/name"] == "kaci-webservice"
