"""An unreachable Docker engine, or one that stops mid-build, is a retry ("trying
again"), never a build failure blamed on the user's inputs. Real sockets: a path where
no engine listens; the pure verdict on how a build stream ended."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from kaci.edges.builder import build_outcome
from kaci.edges.docker_builder import DockerBuilder, EngineUnavailableError
from kaci.edges.registry import RegistryUnavailableError
from kaci.render import image as imagerender
from kaci.settings import Settings


def _builder(tmp_path: Path) -> DockerBuilder:
    return DockerBuilder(
        Settings(builder="docker", docker_host=f"unix://{tmp_path / 'no-engine.sock'}")
    )


def test_build_against_an_unreachable_engine_says_try_again(tmp_path: Path) -> None:
    context = imagerender.model_context({"model.pkl": b"x"})
    with pytest.raises(EngineUnavailableError) as e:
        _builder(tmp_path).build_and_push(context, "127.0.0.1:5000/kaci/t:1")
    assert "the Docker engine at unix://" in str(e.value)
    assert "trying again" in str(e.value)


def test_registry_lookup_where_no_registry_listens_says_try_again() -> None:
    # Tag and base image look-ups go to the registry itself (no engine): a port where
    # nothing listens is the registry being down, a retry.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(builder="docker", registry=f"127.0.0.1:{port}")
    with pytest.raises(RegistryUnavailableError) as e:
        DockerBuilder(settings).remote_digest(f"127.0.0.1:{port}/kaci/python:3.11")
    assert "trying again" in str(e.value)


def test_engine_answers_is_false_where_no_engine_listens(tmp_path: Path) -> None:
    assert _builder(tmp_path).engine_answers() is False


def _never() -> bool:
    raise AssertionError("the engine need not be asked")


@pytest.mark.parametrize(
    ("error", "image_id", "answers", "outcome"),
    [
        # a result and no error: built, whatever the engine does now
        (None, "4f0b9da9fab8", _never, "built"),
        # a step failed and the engine still runs: the inputs' fault
        (
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
            None,
            lambda: True,
            "failed",
        ),
        # the same error while the engine is gone: it killed the step as it shut down
        (
            "The command '/bin/sh -c sleep 30' returned a non-zero code: 137",
            None,
            lambda: False,
            "builder",
        ),
        # the stream ended with neither a result nor an error: cut off
        (None, None, _never, "builder"),
        # an error after a result (e.g. a failed tag) is still a failure
        ("tag failed", "4f0b9da9fab8", lambda: True, "failed"),
    ],
)
def test_build_outcome(
    error: str | None, image_id: str | None, answers: Callable[[], bool], outcome: str
) -> None:
    assert build_outcome(error, image_id, answers) == outcome
