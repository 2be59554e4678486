"""LocalWebservice.deploy_configuration: Azure's port, and kaci's run mode."""

from __future__ import annotations

import pytest
from kaci.azureml.core.webservice import LocalWebservice
from kaci.azureml.exceptions import WebserviceException


def test_the_default_mode_is_a_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KACI_LOCAL_WEBSERVICE", raising=False)
    config = LocalWebservice.deploy_configuration(port=6789)
    assert (config.port, config.mode) == (6789, "process")


def test_unchanged_azure_code_gets_docker_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KACI_LOCAL_WEBSERVICE", "docker")
    assert LocalWebservice.deploy_configuration().mode == "docker"
    # An explicit mode wins over the environment.
    assert LocalWebservice.deploy_configuration(mode="process").mode == "process"


@pytest.mark.parametrize("bad", ["podman", "Docker"])
def test_an_unknown_mode_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("KACI_LOCAL_WEBSERVICE", bad)
    with pytest.raises(WebserviceException, match="process, docker"):
        LocalWebservice.deploy_configuration()


def test_azures_port_check_stays() -> None:
    with pytest.raises(WebserviceException, match="port must be an int"):
        LocalWebservice.deploy_configuration(port=70000)
