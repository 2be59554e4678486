"""Azure's Model.get_model_path rule (kaci_runtime.modelpath and the azureml shim)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kaci_runtime.modelpath import ModelNotFoundException, WebserviceException, get_model_path


def layout(root: Path, name: str, version: int, files: list[str]) -> Path:
    folder = root / "azureml-models" / name / str(version)
    folder.mkdir(parents=True)
    for f in files:
        (folder / f).write_text(f)
    return folder


def test_single_model_dir_gives_the_one_file(tmp_path: Path) -> None:
    folder = layout(tmp_path, "m", 1, ["model.pkl"])
    got = get_model_path("m", model_dir=str(folder), cwd=tmp_path / "elsewhere")
    assert got == str(folder / "model.pkl")


def test_latest_version_when_none_is_given(tmp_path: Path) -> None:
    layout(tmp_path, "m", 2, ["v2.pkl"])
    layout(tmp_path, "m", 10, ["v10.pkl"])
    root = str(tmp_path / "azureml-models")
    assert get_model_path("m", model_dir=root, cwd=tmp_path).endswith("10/v10.pkl")
    assert get_model_path("m", 2, model_dir=root, cwd=tmp_path).endswith("2/v2.pkl")


def test_multi_model_root_finds_each_model(tmp_path: Path) -> None:
    layout(tmp_path, "a", 1, ["a.pkl"])
    layout(tmp_path, "b", 3, ["b.onnx"])
    root = str(tmp_path / "azureml-models")
    assert get_model_path("a", model_dir=root, cwd=tmp_path).endswith("a/1/a.pkl")
    assert get_model_path("b", model_dir=root, cwd=tmp_path).endswith("b/3/b.onnx")


def test_a_folder_model_gives_the_folder(tmp_path: Path) -> None:
    folder = layout(tmp_path, "m", 1, [])
    (folder / "saved_model").mkdir()
    (folder / "saved_model" / "x.pb").write_text("x")
    assert get_model_path("m", model_dir=str(folder), cwd=tmp_path) == str(folder / "saved_model")


def test_several_entries_in_a_version_is_azures_error(tmp_path: Path) -> None:
    folder = layout(tmp_path, "m", 1, ["a.pkl", "b.pkl"])
    with pytest.raises(WebserviceException, match="can contain only 1 file or folder"):
        get_model_path("m", model_dir=str(folder), cwd=tmp_path)


def test_falls_back_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "local_model.pkl").write_text("x")
    got = get_model_path("local_model.pkl", model_dir=None, cwd=tmp_path)
    assert got == str(tmp_path / "local_model.pkl")


def test_missing_model_raises_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundException, match="Model nothing not found"):
        get_model_path("nothing", model_dir=str(tmp_path), cwd=tmp_path)


def test_version_must_be_an_int(tmp_path: Path) -> None:
    with pytest.raises(WebserviceException, match="version should be an int"):
        get_model_path("m", "1", model_dir=str(tmp_path), cwd=tmp_path)  # type: ignore[arg-type]


def test_shim_imports_only_without_the_real_package(tmp_path: Path) -> None:
    folder = layout(tmp_path, "m", 1, ["model.pkl"])
    code = (
        "from kaci_runtime import shim; assert shim.install()\n"
        "from azureml.core.model import Model\n"
        "from azureml.core import Model as M2\n"
        "from azureml.exceptions import WebserviceException\n"
        "from azureml.contrib.services.aml_request import rawhttp, AMLRequest\n"
        "from azureml.contrib.services.aml_response import AMLResponse\n"
        "from azureml_inference_server_http.api.aml_request import rawhttp as r2\n"
        "assert Model is M2\n"
        "print(Model.get_model_path('m'))\n"
    )
    env = {"AZUREML_MODEL_DIR": str(folder), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(folder / "model.pkl")
