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
