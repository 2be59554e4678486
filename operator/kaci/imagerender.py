"""Dockerfiles and build contexts for model images and scoring images (pure).

Scoring image layers are ordered from the slowest-changing input to the fastest:
base image, pip dependencies, the user's dockerSteps, kaci_runtime, the models,
score.py. A change of score.py or of a model therefore reuses the dependency
layer from the engine's cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field

APP_DIR = "/var/azureml-app"
MODELS_DIR = f"{APP_DIR}/azureml-models"
RUNTIME_DIR = "/opt/kaci/runtime"
PORT = 5001


@dataclass(frozen=True)
class ModelLayer:
    name: str
    version: int
    location: str  # image reference holding the files at /


@dataclass(frozen=True)
class PipOptions:
    index_url: str | None = None
    find_links: str | None = None
    no_index: bool = False

    def args(self) -> list[str]:
        out: list[str] = []
        if self.no_index:
            out.append("--no-index")
        if self.index_url:
            out += ["--index-url", self.index_url]
        if self.find_links:
            out += ["--find-links", self.find_links]
        return out


@dataclass(frozen=True)
class ScoringImageInputs:
    base_image: str
    requirements: list[str]
    score_py: bytes
    models: list[ModelLayer]
    runtime_files: Mapping[str, bytes]  # relative path under kaci_runtime/ -> bytes
    docker_steps: str = ""
    pip: PipOptions = field(default_factory=PipOptions)


def model_dir_env(models: list[ModelLayer]) -> str:
    """Azure's rule: the model's own version folder for one model, the root for several."""
    if len(models) == 1:
        m = models[0]
        return f"{MODELS_DIR}/{m.name}/{m.version}"
    return MODELS_DIR


def _json(args: list[str]) -> str:
    return json.dumps(args)


def scoring_dockerfile(inp: ScoringImageInputs) -> str:
    pip = " ".join(
        [
            "python",
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            *inp.pip.args(),
            "-r",
            "/opt/kaci/requirements.txt",
        ]
    )
    lines = [
        f"FROM {inp.base_image}",
        "USER root",
        "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
        "# Dependencies first: a score.py or model change reuses this layer.",
        "COPY requirements.txt /opt/kaci/requirements.txt",
        f"RUN {pip}",
    ]
    if inp.docker_steps.strip():
        lines.append("# dockerSteps (Azure's docker_file): with the dependencies, as root.")
        lines += [ln for ln in inp.docker_steps.strip().splitlines()]
    lines.append(f"COPY runtime/ {RUNTIME_DIR}/")
    for m in inp.models:
        lines.append(f"COPY --from={m.location} / {MODELS_DIR}/{m.name}/{m.version}/")
    lines += [
        f"COPY score.py {APP_DIR}/score.py",
        f"ENV AZUREML_MODEL_DIR={model_dir_env(inp.models)} "
        f"AZUREML_ENTRY_SCRIPT={APP_DIR}/score.py "
        f"PYTHONPATH={RUNTIME_DIR} HOME=/tmp SERVER_PORT={PORT}",
        f"WORKDIR {APP_DIR}",
        "USER 1000:1000",
        f"EXPOSE {PORT}",
        "CMD " + _json(["python", "-m", "kaci_runtime", "--port", str(PORT)]),
    ]
    return "\n".join(lines) + "\n"


def scoring_context(inp: ScoringImageInputs) -> dict[str, bytes]:
    """Build context files, path -> bytes (the Dockerfile included)."""
    files: dict[str, bytes] = {
        "Dockerfile": scoring_dockerfile(inp).encode(),
        "requirements.txt": ("\n".join(inp.requirements) + "\n").encode(),
        "score.py": inp.score_py,
    }
    for rel, data in inp.runtime_files.items():
        files[f"runtime/kaci_runtime/{rel}"] = data
    return files


def model_context(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """A FROM scratch image holding just the model files at /."""
    ctx = {f"files/{name}": data for name, data in files.items()}
    ctx["Dockerfile"] = b"FROM scratch\nCOPY files/ /\n"
    return ctx


def content_hash(context: Mapping[str, bytes], base_digest: str | None) -> str:
    """Hash of every build input; the image tag, so equal inputs never build twice."""
    h = hashlib.sha256()
    h.update(b"kaci-scoring-image/1\n")
    h.update((base_digest or "").encode() + b"\n")
    for name in sorted(context):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(context[name]).digest())
    return h.hexdigest()


def tar_context(context: Mapping[str, bytes]) -> bytes:
    """A reproducible tar of the context (fixed mtimes, owners and modes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs: set[str] = set()
        for name in sorted(context):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            data = context[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
