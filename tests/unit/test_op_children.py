from __future__ import annotations

from kaci.handlers.webservice import child_specs

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
