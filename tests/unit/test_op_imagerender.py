from __future__ import annotations

import io
import shutil
import subprocess
import tarfile

import pytest
from kaci.render import image as ir


def inputs(**kw: object) -> ir.ScoringImageInputs:
    base: dict[str, object] = {
        "base_image": "127.0.0.1:5000/kaci/python:3.11",
        "requirements": ["numpy", "joblib"],
        "score_py": b"def init(): pass\ndef run(d): return d\n",
        "models": [ir.ModelLayer("sklearn_mnist", 2, "reg/kaci-models/ns/m:abc")],
        "runtime_files": {"__init__.py": b"", "server.py": b"x=1\n"},
        "docker_steps": "RUN echo hi",
        "pip": ir.PipOptions(None, "/wheels", True),
    }
    base.update(kw)
    return ir.ScoringImageInputs(**base)  # type: ignore[arg-type]


def test_dockerfile_layer_order_and_contract() -> None:
    df = ir.scoring_dockerfile(inputs())
    lines = df.splitlines()
    assert lines[0] == "FROM 127.0.0.1:5000/kaci/python:3.11"
    idx = {
        key: next(i for i, ln in enumerate(lines) if ln.startswith(key))
        for key in (
            "COPY requirements.txt install-requirements.sh /opt/kaci/",
            "RUN sh /opt/kaci/install-requirements.sh",
            "RUN echo hi",
            "COPY runtime/",
            "RUN python -m compileall -q /opt/kaci/runtime",
            "COPY --from=",
            "USER 1000:1000",
            "CMD",
            "COPY score.py",
        )
    }
    assert list(idx.values()) == sorted(idx.values())
    install = lines[idx["RUN sh /opt/kaci/install-requirements.sh"]]
    assert install.endswith("--no-index --find-links /wheels")
    assert (
        "COPY --from=reg/kaci-models/ns/m:abc / /var/azureml-app/azureml-models/sklearn_mnist/2/"
        in df
    )
    assert "AZUREML_MODEL_DIR=/var/azureml-app/azureml-models/sklearn_mnist/2 " in df
    assert "AZUREML_ENTRY_SCRIPT=/var/azureml-app/score.py" in df
    assert "PYTHONPATH=/opt/kaci/runtime" in df
    assert lines[-2] == 'CMD ["python", "-m", "kaci_runtime", "--port", "5001"]'
    # score.py last: a change of it rebuilds one step only
    assert lines[-1] == "COPY score.py /var/azureml-app/score.py"


def test_model_dir_rule_for_several_models() -> None:
    two = [ir.ModelLayer("a", 1, "x"), ir.ModelLayer("b", 3, "y")]
    assert ir.model_dir_env(two) == "/var/azureml-app/azureml-models"


def test_pip_options() -> None:
    assert ir.PipOptions().args() == []
    assert ir.PipOptions("https://i/simple", None, False).args() == [
        "--index-url",
        "https://i/simple",
    ]


def test_context_holds_runtime_under_package_dir() -> None:
    ctx = ir.scoring_context(inputs())
    assert set(ctx) == {
        "Dockerfile",
        "requirements.txt",
        "install-requirements.sh",
        "score.py",
        "runtime/kaci_runtime/__init__.py",
        "runtime/kaci_runtime/server.py",
    }
    assert ctx["requirements.txt"] == b"numpy\njoblib\n"


def test_hash_changes_with_every_input() -> None:
    h = ir.content_hash(ir.scoring_context(inputs()), "sha256:base")
    assert h == ir.content_hash(ir.scoring_context(inputs()), "sha256:base")
    assert h != ir.content_hash(ir.scoring_context(inputs()), "sha256:other")
    assert h != ir.content_hash(ir.scoring_context(inputs(score_py=b"x")), "sha256:base")
    assert h != ir.content_hash(ir.scoring_context(inputs(requirements=["numpy"])), "sha256:base")
    models = [ir.ModelLayer("sklearn_mnist", 3, "reg/kaci-models/ns/m:def")]
    assert h != ir.content_hash(ir.scoring_context(inputs(models=models)), "sha256:base")


def test_tar_is_reproducible_and_complete() -> None:
    ctx = ir.model_context({"m.pkl": b"abc", "sub/x": b"1"})
    data = ir.tar_context(ctx)
    assert data == ir.tar_context(dict(reversed(list(ctx.items()))))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        names = t.getnames()
        assert {"Dockerfile", "files/m.pkl", "files/sub/x"} <= set(names)
        f = t.extractfile("Dockerfile")
        assert f is not None
        assert f.read() == b"FROM scratch\nCOPY files/ /\n"


def test_install_script_uv_then_pip_then_parallel_bytecode() -> None:
    script = ir.INSTALL_SCRIPT
    # uv only when the base image has it; pip after any uv failure (its error names
    # a missing package); bytecode for all but tests/, in parallel.
    assert "if python -m uv --version" in script
    uv = script.index("python -m uv pip install")
    pip = script.index("python -m pip install --no-cache-dir --no-compile")
    compile_ = script.index("python -m compileall -q -j0 -x '/tests/'")
    assert uv < pip < compile_
    # pip's index settings of a base image reach uv too
    for var in ("PIP_NO_INDEX", "PIP_FIND_LINKS", "PIP_INDEX_URL"):
        assert var in script


def test_install_script_is_valid_posix_sh() -> None:
    sh = shutil.which("dash") or shutil.which("sh")
    assert sh is not None
    subprocess.run([sh, "-n", "-c", ir.INSTALL_SCRIPT], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    subprocess.run(["shellcheck", "-s", "sh", "-"], input=ir.INSTALL_SCRIPT.encode(), check=True)
