from __future__ import annotations

from typing import Any

import pytest
from kaci.errors import Waiting
from kaci.render.image import model_layer, pick_model
from kaci.render.webservice import child_specs, image_name_deployed

CFG = {"executionScript": {"inline": "x"}, "runtime": "python"}


def test_model_files_make_model_and_image_named_like_the_service() -> None:
    model, image = child_specs(
        "aci-mnist-1",
        {
            "modelFiles": {"configMap": {"name": "m"}, "modelName": "sklearn_mnist"},
            "imageConfig": CFG,
        },
    )
    assert model == {"modelName": "sklearn_mnist", "source": {"configMap": {"name": "m"}}}
    assert image == {"imageName": "aci-mnist-1", "models": [{"name": "sklearn_mnist"}], **CFG}


def test_model_name_defaults_to_service_name() -> None:
    model, _ = child_specs("w", {"modelFiles": {"url": {"url": "https://x/m"}}, "imageConfig": CFG})
    assert model is not None
    assert model["modelName"] == "w"


def test_models_make_only_an_image_and_image_makes_nothing() -> None:
    model, image = child_specs("w", {"models": [{"name": "a", "version": 2}], "imageConfig": CFG})
    assert model is None
    assert image is not None
    assert image["models"] == [{"name": "a", "version": 2}]
    assert child_specs("w", {"image": {"name": "myimage1"}}) == (None, None)


def _model(name: str, owner_uid: str | None = None) -> dict:  # type: ignore[type-arg]
    meta: dict = {"name": name}  # type: ignore[type-arg]
    if owner_uid:
        meta["ownerReferences"] = [{"kind": "Webservice", "uid": owner_uid, "name": "w"}]
    return {"metadata": meta}


def test_image_prefers_its_own_webservices_model_then_registered_ones() -> None:
    registered, child_a, child_b = (
        _model("sklearn-mnist"),
        _model("a", "uid-a"),
        _model("b", "uid-b"),
    )
    both = [child_a, registered, child_b]
    assert pick_model(both, {"uid-b"}) is child_b
    assert pick_model(both, set()) is registered
    assert pick_model([child_b, child_a], set()) is child_a


def _stored(
    versions: list[dict[str, object]], ready: dict[str, str] | None = None
) -> dict[str, Any]:
    conds = [{"type": "Ready", "status": "False", **ready}] if ready else []
    return {"status": {"versions": versions, "conditions": conds}}


def test_model_layer_picks_latest_or_the_named_version() -> None:
    versions: list[dict[str, object]] = [
        {"version": 1, "location": "r/m:1"},
        {"version": 2, "location": "r/m:2"},
    ]
    assert model_layer({"name": "m"}, _stored(versions)).location == "r/m:2"
    assert model_layer({"name": "m", "version": 1}, _stored(versions)).version == 1
    with pytest.raises(Waiting) as e:
        model_layer({"name": "m", "version": 3}, _stored(versions))
    assert e.value.reason == "ModelVersionNotFound"
    assert "latest is 2" in str(e.value)


def test_model_layer_fails_for_a_refused_model_and_waits_for_one_on_its_way() -> None:
    refused = _stored([], {"reason": "BadSource", "message": "link-local addresses are refused"})
    with pytest.raises(Waiting) as e:
        model_layer({"name": "m"}, refused)
    assert e.value.reason == "ModelFailed"
    assert "link-local addresses are refused" in str(e.value)

    fetching = _stored([], {"reason": "Fetching", "message": "fetching the model files"})
    with pytest.raises(Waiting) as e:
        model_layer({"name": "m"}, fetching)
    assert e.value.reason == "ModelNotReady"


def test_webservice_deploys_its_child_image_or_the_named_one() -> None:
    assert image_name_deployed("w", {"modelFiles": {}, "imageConfig": CFG}) == "w"
    assert image_name_deployed("w", {"image": {"name": "myimage1", "version": 2}}) == "myimage1"


def test_a_model_layer_is_named_by_the_registry_the_builder_pushes_to_now() -> None:
    """A Model stored while the operator pushed to 127.0.0.1:5000 (the docker driver on
    the node), built on by a buildkitd that reaches the same registry as 10.88.0.1:5000."""
    model = {
        "metadata": {"name": "m", "namespace": "ns"},
        "status": {
            "versions": [
                {
                    "version": 1,
                    "digest": "sha256:" + "ab" * 32,
                    "location": "127.0.0.1:5000/kaci-models/ns/m:abababababababab",
                }
            ]
        },
    }
    layer = model_layer({"name": "m"}, model, "10.88.0.1:5000")
    assert layer.location == "10.88.0.1:5000/kaci-models/ns/m:abababababababab"
    assert model_layer({"name": "m"}, model).location.startswith("127.0.0.1:5000/")


def test_a_model_stored_under_another_registry_name_is_not_settled() -> None:
    from kaci.status.model import settled

    body = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "location": "127.0.0.1:5000/kaci-models/ns/m:ab",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    assert settled(body, "127.0.0.1:5000")
    assert not settled(body, "10.88.0.1:5000")  # stored again (a look-up) under the new name
