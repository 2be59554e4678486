from __future__ import annotations

from typing import Any

import pytest
from kaci.handlers.webservice import child_specs
from kaci.modelsource import SourceNotReadyError

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
    from kaci.handlers.image import pick_model

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
    from kaci.handlers.image import model_layer

    versions: list[dict[str, object]] = [
        {"version": 1, "location": "r/m:1"},
        {"version": 2, "location": "r/m:2"},
    ]
    assert model_layer({"name": "m"}, _stored(versions)).location == "r/m:2"
    assert model_layer({"name": "m", "version": 1}, _stored(versions)).version == 1
    with pytest.raises(SourceNotReadyError) as e:
        model_layer({"name": "m", "version": 3}, _stored(versions))
    assert e.value.reason == "ModelVersionNotFound"
    assert "latest is 2" in str(e.value)


def test_model_layer_fails_for_a_refused_model_and_waits_for_one_on_its_way() -> None:
    from kaci.handlers.image import model_layer

    refused = _stored([], {"reason": "BadSource", "message": "link-local addresses are refused"})
    with pytest.raises(SourceNotReadyError) as e:
        model_layer({"name": "m"}, refused)
    assert e.value.reason == "ModelFailed"
    assert "link-local addresses are refused" in str(e.value)

    fetching = _stored([], {"reason": "Fetching", "message": "fetching the model files"})
    with pytest.raises(SourceNotReadyError) as e:
        model_layer({"name": "m"}, fetching)
    assert e.value.reason == "ModelNotReady"


def test_webservice_deploys_its_child_image_or_the_named_one() -> None:
    from kaci.handlers.webservice import image_name_deployed

    assert image_name_deployed("w", {"modelFiles": {}, "imageConfig": CFG}) == "w"
    assert image_name_deployed("w", {"image": {"name": "myimage1", "version": 2}}) == "myimage1"


def _image(state: str, content: str = "c" * 64, location: str = "") -> dict[str, Any]:
    return {"status": {"state": state, "contentHash": content, "imageLocation": location}}


def test_an_image_wakes_its_webservice_once_per_state_and_content() -> None:
    from kaci.handlers.webservice import wake_value

    waiting = {"name": "w", "location": "", "poke": ""}
    assert wake_value({}, waiting) == "NotStarted:"
    assert wake_value(_image("Running"), waiting) == "Running:" + "c" * 16
    assert wake_value(_image("Running"), {**waiting, "poke": "Running:" + "c" * 16}) is None
    done = _image("Succeeded", location="reg/x@sha256:1")
    assert wake_value(done, waiting) == "Succeeded:" + "c" * 16
    # failures wake it too (it then says why)
    assert wake_value(_image("Failed"), waiting) == "Failed:" + "c" * 16
    # the image it deploys already: nothing to do, even with an old poke
    assert wake_value(done, {**waiting, "location": "reg/x@sha256:1"}) is None
    # a rebuilt image (new content) wakes a Webservice serving the old one
    new = _image("Succeeded", content="d" * 64, location="reg/x@sha256:2")
    serving = {**waiting, "location": "reg/x@sha256:1", "poke": "Succeeded:" + "c" * 16}
    assert wake_value(new, serving) == "Succeeded:" + "d" * 16


def test_a_model_wakes_images_for_a_new_version_or_a_refusal_only() -> None:
    from kaci.handlers.model import wake_value

    def model(versions: list[int], reason: str = "Stored") -> dict[str, Any]:
        return {
            "metadata": {"name": "m-obj"},
            "spec": {"modelName": "mnist"},
            "status": {
                "versions": [{"version": v} for v in versions],
                "conditions": [{"type": "Ready", "status": "False", "reason": reason}],
            },
        }

    waiting = {"name": "img", "built": [], "poke": ""}
    # on its way: no wake
    assert wake_value(model([], "Fetching"), waiting) is None
    # first version stored: the waiting Image builds
    assert wake_value(model([1]), waiting) == "mnist:1"
    assert wake_value(model([1]), {**waiting, "poke": "mnist:1"}) is None
    # built with the latest already: nothing; a newer version wakes it again
    assert wake_value(model([1]), {**waiting, "built": [["mnist", 1]]}) is None
    assert wake_value(model([1, 2]), {**waiting, "built": [["mnist", 1]], "poke": "mnist:1"}) == (
        "mnist:2"
    )
    # refused for good: the Image fails saying why
    assert wake_value(model([], "BadSource"), waiting) == "mnist:failed"
