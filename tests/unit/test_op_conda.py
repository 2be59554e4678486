from __future__ import annotations

import pytest
from kaci.render import conda


def test_azure_myenv_with_pip_and_conda_lists() -> None:
    text = """
name: project_environment
dependencies:
  - python=3.6.2
  - scikit-learn=1.5.0=py311h
  - conda-forge::numpy>=1.26
  - pytorch
  - pip
  - pip:
      - azureml-defaults
      - joblib==1.4.2
      - inference-schema[numpy-support]
channels: [conda-forge]
"""
    assert conda.pip_requirements(text) == [
        "scikit-learn==1.5.0",
        "numpy>=1.26",
        "torch",
        "joblib==1.4.2",
        "inference-schema[numpy-support]",
    ]


def test_conda_wildcard_version() -> None:
    assert conda.conda_spec_to_pip("numpy=1.26.*") == "numpy==1.26.*"
    assert conda.conda_spec_to_pip("numpy=1.26") == "numpy==1.26"
    assert conda.conda_spec_to_pip("python") is None


@pytest.mark.parametrize(
    "text", ["[1, 2", "- just a list", "dependencies: 3", "dependencies:\n  - {conda: [x]}"]
)
def test_bad_files_say_why(text: str) -> None:
    with pytest.raises(conda.CondaFileError):
        conda.pip_requirements(text)


def test_empty_file_and_merge() -> None:
    assert conda.pip_requirements("") == []
    assert conda.merge_requirements(["a", "b"], ["b", " c "], []) == ["a", "b", "c"]
