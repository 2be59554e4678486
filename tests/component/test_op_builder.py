"""The docker driver against the real Docker engine and the local registry: model
images, scoring images from the walkthrough (air-gapped: local base image and
wheelhouse), run and scored with `docker run`, built once per content, the
dependency layer reused for a score.py change, and a missing pip package named in
the failure."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import joblib
import numpy as np
import pytest
import requests
from kaci.edges.builder import BuildError
from kaci.edges.buildlog import BuildLog
from kaci.edges.docker_builder import DockerBuilder as Builder
from kaci.reconcile.image import runtime_files, runtime_requirements
from kaci.render import conda, modelfiles, names
from kaci.render import image as imagerender
from kaci.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"
NS = "component-op"


@pytest.fixture(scope="module")
def settings(docker_engine: str, registry: str) -> Settings:
    return Settings(
        builder="docker",
        docker_host=docker_engine,
        registry=registry,
        default_base_image=f"{registry}/kaci/python:3.11",
        pip_find_links="/wheels",
        pip_no_index=True,
        build_timeout_s=900,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[list[float]]]]:
    out = tmp_path_factory.mktemp("mnist")
    subprocess.run(
        [sys.executable, str(MNIST / "train.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out / "sklearn_mnist_model.pkl", json.loads((out / "sample-request.json").read_text())


def model_layer(b: Builder, s: Settings, model_file: Path) -> imagerender.ModelLayer:
    files = {"sklearn_mnist_model.pkl": model_file.read_bytes()}
    ref = names.model_image_ref(s.registry, NS, "sklearn_mnist", modelfiles.digest(files))
    b.ensure(imagerender.model_context(files), ref, kind="model")
    return imagerender.ModelLayer("sklearn_mnist", 1, ref)


def scoring_inputs(
    s: Settings, layer: imagerender.ModelLayer, score_py: bytes, extra: list[str] | None = None
) -> imagerender.ScoringImageInputs:
    reqs = conda.merge_requirements(
        runtime_requirements(),
        conda.pip_requirements((MNIST / "myenv.yml").read_text()),
        extra or [],
    )
    return imagerender.ScoringImageInputs(
        base_image=s.default_base_image,
        requirements=reqs,
        score_py=score_py,
        models=[layer],
        runtime_files=runtime_files(),
        pip=imagerender.PipOptions(s.pip_index_url, s.pip_find_links, s.pip_no_index),
    )


def tag_for(b: Builder, s: Settings, inp: imagerender.ScoringImageInputs, name: str) -> str:
    ctx = imagerender.scoring_context(inp)
    content = imagerender.content_hash(ctx, b.base_digest(inp.base_image))
    return f"{names.scoring_repo(s.registry, NS, name)}:{content[:24]}"


@pytest.fixture
def container(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for cid in started:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(cid).remove(force=True)


def test_model_image_round_trip(settings: Settings) -> None:
    b = Builder(settings)
    files = {"model.bin": secrets.token_bytes(256), "sub/config.json": b'{"a": 1}'}
    ref = names.model_image_ref(settings.registry, NS, "Round_Trip", modelfiles.digest(files))
    assert b.remote_digest(ref) is None
    digest, built = b.ensure(imagerender.model_context(files), ref, kind="model")
    assert built
    assert digest.startswith("sha256:")
    assert b.remote_digest(ref) == digest
    # the files come back out of the image exactly (the `image` model source reads this way)
    assert b.files_from_image(ref, "/", 1 << 20) == files
    assert b.files_from_image(ref, "/sub", 1 << 20) == {"config.json": b'{"a": 1}'}


def test_scoring_image_runs_and_scores(
    settings: Settings,
    trained: tuple[Path, dict[str, list[list[float]]]],
    docker_client: docker.DockerClient,
    container: list[str],
) -> None:
    model_file, sample = trained
    b = Builder(settings)
    layer = model_layer(b, settings, model_file)
    marker = f"# build {secrets.token_hex(4)}\n".encode()
    inp = scoring_inputs(settings, layer, (MNIST / "score.py").read_bytes() + marker)
    tag = tag_for(b, settings, inp, "runs")
    digest, built = b.ensure(imagerender.scoring_context(inp), tag)
    assert built

    # the same inputs, asked again (even by a new builder, as after a restart): no build
    again, built_again = Builder(settings).ensure(imagerender.scoring_context(inp), tag)
    assert (again, built_again) == (digest, False)

    ref = f"{tag.rsplit(':', 1)[0]}@{digest}"
    c = docker_client.containers.run(
        ref,
        detach=True,
        read_only=True,
        tmpfs={"/tmp": ""},
        user="1000:1000",
        ports={"5001/tcp": ("127.0.0.1", None)},
        mem_limit="1g",
    )
    container.append(c.id)
    c.reload()
    port = c.attrs["NetworkSettings"]["Ports"]["5001/tcp"][0]["HostPort"]
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):  # bounded wait for init() (not a speed assertion)
        try:
            if requests.get(f"{base}/ready", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        c.reload()
        assert c.status == "running", c.logs().decode()[-2000:]
        time.sleep(1)
    resp = requests.post(
        f"{base}/score",
        data=json.dumps(sample),
        timeout=30,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    expected = joblib.load(model_file).predict(np.array(sample["data"])).tolist()
    assert resp.json() == expected
    env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
    assert env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/sklearn_mnist/1"
    assert c.attrs["Config"]["User"] == "1000:1000"


def test_score_change_reuses_dependency_layer(
    settings: Settings, trained: tuple[Path, dict[str, list[list[float]]]]
) -> None:
    model_file, _ = trained
    b = Builder(settings)
    layer = model_layer(b, settings, model_file)
    inp = scoring_inputs(
        settings,
        layer,
        (MNIST / "score.py").read_bytes() + f"# variant {secrets.token_hex(4)}\n".encode(),
    )
    lines: list[str] = []

    def collect(new: list[str], _log: BuildLog) -> None:
        lines.extend(new)

    _, built = b.ensure(
        imagerender.scoring_context(inp), tag_for(b, settings, inp, "reuse"), collect
    )
    assert built
    pip_step = next(i for i, ln in enumerate(lines) if "RUN sh /opt/kaci/install-req" in ln)
    assert "Using cache" in lines[pip_step + 1], lines[pip_step : pip_step + 3]
    score_step = next(i for i, ln in enumerate(lines) if "COPY score.py" in ln)
    assert "Using cache" not in lines[score_step + 1]


def test_missing_pip_package_is_named(
    settings: Settings, trained: tuple[Path, dict[str, list[list[float]]]]
) -> None:
    model_file, _ = trained
    b = Builder(settings)
    layer = model_layer(b, settings, model_file)
    inp = scoring_inputs(
        settings, layer, (MNIST / "score.py").read_bytes(), ["no-such-package-kaci-test==1.0"]
    )
    with pytest.raises(BuildError) as err:
        b.ensure(imagerender.scoring_context(inp), tag_for(b, settings, inp, "badpip"))
    msg = str(err.value)
    assert "no-such-package-kaci-test" in msg
    assert "RUN sh /opt/kaci/install-requirements.sh" in msg  # the step
    assert "No matching distribution" in err.value.log_tail
