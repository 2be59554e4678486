"""An unreachable Docker engine is a retry ("trying again"), never a build failure
blamed on the user's inputs. Real sockets: a path where no engine listens."""

from __future__ import annotations

from pathlib import Path

import pytest
from kaci import imagerender
from kaci.builder import Builder, EngineUnavailableError
from kaci.settings import Settings


def _builder(tmp_path: Path) -> Builder:
    return Builder(Settings(docker_host=f"unix://{tmp_path / 'no-engine.sock'}"))


def test_build_against_an_unreachable_engine_says_try_again(tmp_path: Path) -> None:
    context = imagerender.model_context({"model.pkl": b"x"})
    with pytest.raises(EngineUnavailableError) as e:
        _builder(tmp_path).build_and_push(context, "127.0.0.1:5000/kaci/t:1")
    assert "the Docker engine at unix://" in str(e.value)
    assert "trying again" in str(e.value)


def test_registry_lookup_against_an_unreachable_engine_says_try_again(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailableError):
        _builder(tmp_path).base_digest("127.0.0.1:5000/kaci/python:3.11")
