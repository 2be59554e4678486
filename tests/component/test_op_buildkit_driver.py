"""The buildkit driver against real parts: a buildkitd on this host (rootful, a unix
socket; tests/shared/hostbuildkit.py), the local registry (plain HTTP), and
registries with credentials (docker-registry with htpasswd, and with token auth
against a real token server: tests/shared/authregistry.py).

Covered: a build with a zstd push (model images gzip) and the no-double-build
guarantee; the registry cache serving a fresh buildkitd a score.py-only rebuild;
cancel at the deadline (buildkitd keeps running); buildkitd down or stopped
mid-build, and the registry down, as retries with the reason; a failing Dockerfile
step and a missing pip package as Failed naming the step; pushes and model-file
reads with Basic and token credentials; the SDK's uploads with them."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import authregistry  # type: ignore[import-not-found,unused-ignore]
import hostbuildkit  # type: ignore[import-not-found,unused-ignore]
import pytest
from kaci.azureml._files import ModelFile
from kaci.azureml._registry import RegistryClient
from kaci.azureml.exceptions import UserErrorException
from kaci.edges.builder import BuildError, BuilderUnavailableError
from kaci.edges.buildkit_builder import BuildkitBuilder, BuildkitUnavailableError
from kaci.edges.buildlog import BuildLog
from kaci.edges.registry import Registry
from kaci.errors import InfraDown, UserError
from kaci.reconcile.image import runtime_files, runtime_requirements
from kaci.registry import reference
from kaci.registry.client import Distribution
from kaci.render import conda, modelfiles, names
from kaci.render import image as imagerender
from kaci.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"
NS = "t-bkd-component"
BASE = "127.0.0.1:5000/kaci/python:3.11"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@pytest.fixture(scope="module")
def bk_bin() -> Path:
    found = hostbuildkit.binaries()
    if found is None:
        pytest.skip(hostbuildkit.skip_reason())
    return Path(found)


@pytest.fixture(scope="module")
def basic_registry() -> Iterator[Any]:
    with authregistry.running("htpasswd") as reg:
        yield reg


@pytest.fixture(scope="module")
def token_registry() -> Iterator[Any]:
    with authregistry.running("token") as reg:
        yield reg


def _plain(*regs: Any) -> list[str]:
    return ["127.0.0.1:5000", *(r.host for r in regs)]


@pytest.fixture(scope="module")
def daemon(bk_bin: Path, registry: str, basic_registry: Any, token_registry: Any) -> Iterator[Any]:
    with hostbuildkit.running(bk_bin, _plain(basic_registry, token_registry)) as d:
        yield d


def settings_for(d: Any, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "builder": "buildkit",
        "buildkit_addr": d.addr,
        "buildctl": d.buildctl,
        "registry": "127.0.0.1:5000",
        "default_base_image": BASE,
        "pip_find_links": "/wheels",
        "pip_no_index": True,
        "build_timeout_s": 900,
    }
    return Settings(**{**base, **kw})


@pytest.fixture(scope="module")
def settings(daemon: Any) -> Settings:
    return settings_for(daemon)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mnist")
    subprocess.run(
        [sys.executable, str(MNIST / "train.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out / "sklearn_mnist_model.pkl"


def model_layer(b: BuildkitBuilder, model_file: Path) -> imagerender.ModelLayer:
    files = {"sklearn_mnist_model.pkl": model_file.read_bytes()}
    ref = names.model_image_ref(b.settings.registry, NS, "sklearn_mnist", modelfiles.digest(files))
    b.ensure(imagerender.model_context(files), ref, kind="model")
    return imagerender.ModelLayer("sklearn_mnist", 1, ref)


def scoring(
    b: BuildkitBuilder, layer: imagerender.ModelLayer, name: str, marker: str, **kw: Any
) -> tuple[dict[str, bytes], str]:
    """(context, tag) of the walkthrough's scoring image, score.py marked."""
    s = b.settings
    reqs = conda.merge_requirements(
        runtime_requirements(),
        conda.pip_requirements((MNIST / "myenv.yml").read_text()),
        kw.pop("extra", []),
    )
    inp = imagerender.ScoringImageInputs(
        base_image=s.default_base_image,
        requirements=reqs,
        score_py=(MNIST / "score.py").read_bytes() + f"# {marker}\n".encode(),
        models=[layer],
        runtime_files=runtime_files(),
        pip=imagerender.PipOptions(s.pip_index_url, s.pip_find_links, s.pip_no_index),
        **kw,
    )
    ctx = imagerender.scoring_context(inp)
    content = imagerender.content_hash(ctx, b.base_digest(inp.base_image))
    return ctx, f"{names.scoring_repo(s.registry, NS, name)}:{content[:24]}"


def manifest(ref: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    hosts = ["127.0.0.1:5000", ref.split("/", 1)[0]]
    return Distribution(config or {}, hosts).image_manifest(reference.parse(ref))


def image_config(ref: str) -> dict[str, Any]:
    d = Distribution({}, ["127.0.0.1:5000"])
    r = reference.parse(ref)
    blob = d.open_blob(r, manifest(ref)["config"]["digest"])
    try:
        return dict(json.loads(blob.read()))
    finally:
        blob.release_conn()


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, new: list[str], _log: BuildLog) -> None:
        self.lines.extend(new)

    def after(self, needle: str) -> str:
        i = next(i for i, ln in enumerate(self.lines) if needle in ln)
        return self.lines[i + 1] if i + 1 < len(self.lines) else ""


def test_build_pushes_zstd_scoring_images_and_gzip_model_images(
    settings: Settings, trained: Path
) -> None:
    b = BuildkitBuilder(settings)
    files = {"model.bin": secrets.token_bytes(256), "sub/config.json": b'{"a": 1}'}
    mref = names.model_image_ref(settings.registry, NS, "Round_Trip", modelfiles.digest(files))
    assert b.remote_digest(mref) is None
    mdigest, built = b.ensure(imagerender.model_context(files), mref, kind="model")
    assert built
    assert b.remote_digest(mref) == mdigest
    assert {x["mediaType"] for x in manifest(mref)["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    }
    # the model files come back out of the image through the registry, no engine
    assert b.files_from_image(mref, "/", 1 << 20) == files
    assert b.files_from_image(mref, "/sub", 1 << 20) == {"config.json": b'{"a": 1}'}

    layer = model_layer(b, trained)
    ctx, tag = scoring(b, layer, "zstd", secrets.token_hex(4))
    lines = Lines()
    digest, built = b.ensure(ctx, tag, lines)
    assert built
    assert any(ln.startswith("Step ") for ln in lines.lines)
    assert lines.lines[-1] == f"pushed {tag}"
    assert b.remote_digest(tag) == digest
    layers = manifest(tag)["layers"]
    assert {x["mediaType"] for x in layers} == {ZSTD}  # the base image's layers too
    cfg = image_config(tag)["config"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/sklearn_mnist/1"
    assert cfg["User"] == "1000:1000"
    # the same inputs again, from a new builder (an operator restart): no build
    assert BuildkitBuilder(settings).ensure(ctx, tag) == (digest, False)


def test_registry_cache_gives_a_fresh_buildkitd_the_dependency_layer(
    bk_bin: Path, settings: Settings, trained: Path
) -> None:
    b = BuildkitBuilder(settings)
    layer = model_layer(b, trained)
    ctx_a, tag_a = scoring(b, layer, "cache", f"first {secrets.token_hex(4)}")
    b.ensure(ctx_a, tag_a)
    # A buildkitd with an empty local cache (as after a restart, or another replica):
    # only the registry cache beside the image can give it the dependency layer.
    with hostbuildkit.running(bk_bin, _plain()) as fresh:
        b2 = BuildkitBuilder(settings_for(fresh))
        ctx_b, tag_b = scoring(b2, layer, "cache", f"second {secrets.token_hex(4)}")
        lines = Lines()
        _, built = b2.ensure(ctx_b, tag_b, lines)
    assert built
    assert lines.after("RUN sh /opt/kaci/install-requirements.sh") == " ---> Using cache"
    assert lines.after("COPY score.py") != " ---> Using cache"
    a, b_ = manifest(tag_a)["layers"], manifest(tag_b)["layers"]
    assert [x["digest"] for x in a[:-1]] == [x["digest"] for x in b_[:-1]]
    assert a[-1]["digest"] != b_[-1]["digest"]  # score.py's own layer


def _tiny(run: str) -> dict[str, bytes]:
    return {"Dockerfile": f"FROM {BASE}\n{run}\n".encode()}


def test_cancel_at_the_deadline_leaves_buildkitd_running(daemon: Any) -> None:
    b = BuildkitBuilder(settings_for(daemon, build_timeout_s=8))
    ref = f"127.0.0.1:5000/kaci/{NS}/cancel:{secrets.token_hex(6)}"
    with pytest.raises(BuildError) as err:
        b.build_and_push(_tiny(f"RUN sleep 300 # {secrets.token_hex(4)}"), ref)
    assert "timed out after 8s" in str(err.value)
    assert "RUN sleep 300" in str(err.value)
    assert daemon.proc.poll() is None
    assert b.answers()
    assert b.remote_digest(ref) is None
    # and it builds the next one
    digest = b.build_and_push(_tiny(f"RUN echo {secrets.token_hex(4)}"), ref)
    assert b.remote_digest(ref) == digest


def test_buildkitd_not_listening_is_a_retry_with_the_address(tmp_path: Path) -> None:
    gone = f"unix://{tmp_path / 'no-buildkitd.sock'}"
    folder = hostbuildkit.binaries()
    if folder is None:
        pytest.skip(hostbuildkit.skip_reason())
    b = BuildkitBuilder(
        Settings(buildkit_addr=gone, buildctl=str(folder / "buildctl"), build_timeout_s=60)
    )
    with pytest.raises(BuildkitUnavailableError) as err:
        b.build_and_push(_tiny("RUN true"), f"127.0.0.1:5000/kaci/{NS}/down:1")
    assert isinstance(err.value, InfraDown)
    assert gone in str(err.value)
    assert "trying again" in str(err.value)


def test_buildkitd_stopped_mid_build_is_a_retry(bk_bin: Path, registry: str) -> None:
    with hostbuildkit.running(bk_bin, _plain()) as d:
        b = BuildkitBuilder(settings_for(d))

        def stop_when_running(new: list[str], _log: BuildLog) -> None:
            if any("RUN sleep 120" in ln for ln in new):
                threading.Thread(target=d.stop, daemon=True).start()

        with pytest.raises(BuildkitUnavailableError) as err:
            b.build_and_push(
                _tiny(f"RUN sleep 120 # {secrets.token_hex(4)}"),
                f"127.0.0.1:5000/kaci/{NS}/stopped:1",
                stop_when_running,
            )
    assert "trying again" in str(err.value)
    assert "RUN sleep 120" in str(err.value)


def test_registry_down_is_a_retry(daemon: Any) -> None:
    port = authregistry.free_port()
    b = BuildkitBuilder(settings_for(daemon))
    ctx = {"Dockerfile": f"FROM 127.0.0.1:{port}/kaci/python:3.11\nRUN true\n".encode()}
    with pytest.raises(BuilderUnavailableError) as err:
        b.build_and_push(ctx, f"127.0.0.1:5000/kaci/{NS}/regdown:1")
    assert "could not reach a registry" in str(err.value)
    assert f"is the registry at 127.0.0.1:{port} up?" in str(err.value)  # the base's
    assert "trying again" in str(err.value)


def test_a_failing_step_fails_naming_the_step_and_its_output(settings: Settings) -> None:
    b = BuildkitBuilder(settings)
    run = f"RUN echo about-to-fail-{secrets.token_hex(3)} && exit 3"
    with pytest.raises(BuildError) as err:
        b.build_and_push(_tiny(run), f"127.0.0.1:5000/kaci/{NS}/fails:1")
    assert isinstance(err.value, UserError)
    assert f"Step 2/2 : {run}" in str(err.value)
    assert "exit code: 3" in str(err.value)
    assert "about-to-fail" in err.value.log_tail


def test_a_missing_pip_package_is_named(settings: Settings, trained: Path) -> None:
    b = BuildkitBuilder(settings)
    layer = model_layer(b, trained)
    ctx, tag = scoring(b, layer, "badpip", "x", extra=["no-such-package-kaci-test==1.0"])
    with pytest.raises(BuildError) as err:
        b.ensure(ctx, tag)
    msg = str(err.value)
    assert "no-such-package-kaci-test" in msg
    assert "RUN sh /opt/kaci/install-requirements.sh" in msg
    assert "No matching distribution" in err.value.log_tail


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_push_and_model_files_with_credentials(
    kind: str, daemon: Any, basic_registry: Any, token_registry: Any, tmp_path: Path
) -> None:
    reg = basic_registry if kind == "htpasswd" else token_registry
    config = reg.docker_config(tmp_path / "docker")
    s = settings_for(daemon, registry=reg.host, registry_push_config=str(config))
    b = BuildkitBuilder(s)
    files = {"weights.bin": secrets.token_bytes(512), "meta/labels.txt": b"0\n1\n"}
    ref = names.model_image_ref(reg.host, NS, "authed", modelfiles.digest(files))
    assert b.remote_digest(ref) is None  # the look-up itself needs the credentials
    digest, built = b.ensure(imagerender.model_context(files), ref, kind="model")
    assert built
    assert b.remote_digest(ref) == digest
    assert Registry(s).files(ref, "/", 1 << 20) == files
    assert Registry(s).files(ref, "/meta", 1 << 20) == {"labels.txt": b"0\n1\n"}
    if reg.tokens is not None:
        assert f"repository:{ref.split('/', 1)[1].split(':')[0]}:pull" in reg.tokens.issued
    # without the credentials: refused, in words that say what to do
    anon = Registry(settings_for(daemon, registry=reg.host))
    with pytest.raises(UserError) as err:
        anon.files(ref, "/", 1 << 20)
    assert "log in" in str(err.value) or "refused" in str(err.value)


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_sdk_uploads_large_models_with_credentials(
    kind: str,
    basic_registry: Any,
    token_registry: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = basic_registry if kind == "htpasswd" else token_registry
    src = tmp_path / "model.bin"
    src.write_bytes(secrets.token_bytes(3 << 20))  # too large for a ConfigMap
    data = src.read_bytes()
    files = [ModelFile("model.bin", src, len(data), hashlib.sha256(data).hexdigest())]
    # the user's own `docker login` file, found the way docker finds it
    monkeypatch.setenv("DOCKER_CONFIG", str(reg.docker_config(tmp_path / "docker").parent))
    client = RegistryClient(reg.host, insecure=True)
    pushed = client.push_files(f"kaci/{NS}/model-files/big", "v1", files)
    assert pushed.startswith(f"{reg.host}/kaci/{NS}/model-files/big@sha256:")
    written = client.pull_files(pushed, "/model", tmp_path / "back")
    assert [p.read_bytes() for p in written] == [src.read_bytes()]
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nobody"))
    with pytest.raises(UserErrorException):
        RegistryClient(reg.host, insecure=True).push_files(
            f"kaci/{NS}/model-files/big", "v2", files
        )


def test_a_missing_base_image_fails_naming_the_from_step(settings: Settings) -> None:
    b = BuildkitBuilder(settings)
    ctx = {"Dockerfile": b"FROM 127.0.0.1:5000/kaci/no-such-base:1\nRUN true\n"}
    with pytest.raises(BuildError) as err:
        b.build_and_push(ctx, f"127.0.0.1:5000/kaci/{NS}/nobase:1")
    assert "build failed at Step 1/2 : FROM 127.0.0.1:5000/kaci/no-such-base:1" in str(err.value)
    assert "check baseImage" in str(err.value)
