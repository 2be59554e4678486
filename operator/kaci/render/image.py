"""Dockerfiles and build contexts for model images and scoring images (pure).

Scoring image layers are ordered from the slowest-changing input to the fastest:
base image, pip dependencies, the user's dockerSteps, kaci_runtime, the models,
the image settings, score.py. A change of score.py or of a model therefore reuses
the dependency layer from the engine's cache, and a score.py change rebuilds just
its own step.

The dependencies are installed by INSTALL_SCRIPT: uv when the base image has it
(kaci's does), pip otherwise, then bytecode compiled in parallel.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaci import api
from kaci.errors import Waiting
from kaci.render import names

APP_DIR = api.APP_DIR
MODELS_DIR = api.MODELS_DIR
RUNTIME_DIR = "/opt/kaci/runtime"
PORT = api.SCORING_PORT
REQUIREMENTS = "/opt/kaci/requirements.txt"
INSTALL = "/opt/kaci/install-requirements.sh"

# Installs the requirements into the base image's Python (POSIX sh: any base image).
# Measured on the MNIST requirements (numpy, scipy, scikit-learn) from the wheelhouse:
# pip 16 s, of which 11 s compile bytecode one file at a time; uv 1.3 s plus a parallel
# compile of 6 s. Bytecode is compiled at build time because Pods run read-only and
# cannot keep .pyc files: without them every start compiles its imports again (+2.6 s
# of CPU for scikit-learn, four times that at 0.25 cores). tests/ folders are left out
# (nothing imports them when scoring; they would be compiled on import if something did).
INSTALL_SCRIPT = f"""#!/bin/sh
set -eu
req={REQUIREMENTS}
if python -m uv --version >/dev/null 2>&1; then
  # uv reads no PIP_* variables: pass on those a base image sets for pip (the
  # operator's own options, the arguments, come first and win, as with pip).
  export UV_INDEX_URL="${{UV_INDEX_URL:-${{PIP_INDEX_URL:-}}}}"
  export UV_FIND_LINKS="${{UV_FIND_LINKS:-${{PIP_FIND_LINKS:-}}}}"
  [ -n "$UV_INDEX_URL" ] || unset UV_INDEX_URL
  [ -n "$UV_FIND_LINKS" ] || unset UV_FIND_LINKS
  case " $* " in
    *" --no-index "*) ;;
    *) case "${{PIP_NO_INDEX:-}}" in 1|[Tt]rue|[Yy]es|[Oo]n) set -- --no-index "$@" ;; esac ;;
  esac
  # unsafe-best-match: the highest version across all indexes, as pip picks (uv's
  # default takes the first index that has the package).
  if NO_COLOR=1 python -m uv pip install --no-cache --index-strategy unsafe-best-match \\
    --python "$(command -v python)" "$@" -r "$req"; then
    installed=1
  else
    # pip again, for its own error message: the operator names a missing package from it.
    echo "uv could not install the requirements; trying pip"
  fi
fi
if [ -z "${{installed:-}}" ]; then
  python -m pip install --no-cache-dir --no-compile "$@" -r "$req"
fi
libs=$(python -c 'import sysconfig as s; print(*{{s.get_path("purelib"), s.get_path("platlib")}})')
# purelib and platlib (one folder or two): split on purpose
# shellcheck disable=SC2086
python -m compileall -q -j0 -x '/tests/' $libs
"""


@dataclass(frozen=True)
class ModelLayer:
    name: str
    version: int
    location: str  # image reference holding the files at /
    object: str = ""  # the Model object it came from (several may share a name)


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
    # Azure's source_directory: an OCI image holding the code folder (reference, folder).
    source_dir: tuple[str, str] | None = None
    # Azure's Environment.environment_variables: set in the scoring container.
    env: Mapping[str, str] = field(default_factory=dict)
    # Layer compression the Image asks for (None: the operator's default).
    layer_compression: str | None = None


def model_dir_env(models: list[ModelLayer]) -> str:
    """Azure's rule: the model's own version folder for one model, the root for several."""
    if len(models) == 1:
        m = models[0]
        return f"{MODELS_DIR}/{m.name}/{m.version}"
    return MODELS_DIR


def env_value(value: str) -> str:
    """A Dockerfile ENV value taken literally: double-quoted, with `\\`, `"` and `$`
    escaped (Dockerfile would expand `$NAME`), newlines kept as the two characters."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n") + '"'


def _json(args: list[str]) -> str:
    return json.dumps(args)


def scoring_dockerfile(inp: ScoringImageInputs) -> str:
    install = " ".join(["sh", INSTALL, *inp.pip.args()])
    lines = [
        f"FROM {inp.base_image}",
        "USER root",
    ]
    if inp.layer_compression is not None:
        # Not a build step: it makes the content hash (the tag) differ from the same
        # inputs pushed with the default compression, which would be another image.
        lines.append(f"# kaci: layers pushed with {inp.layer_compression}")
    lines += [
        "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
        "# Dependencies first: a score.py or model change reuses this layer.",
        "COPY requirements.txt install-requirements.sh /opt/kaci/",
        f"RUN {install}",
    ]
    if inp.docker_steps.strip():
        lines.append("# dockerSteps (Azure's docker_file): with the dependencies, as root.")
        lines += [ln for ln in inp.docker_steps.strip().splitlines()]
    lines += [
        f"COPY runtime/ {RUNTIME_DIR}/",
        # Pods cannot write .pyc files (read-only): compiled here, once per runtime.
        f"RUN python -m compileall -q {RUNTIME_DIR}",
    ]
    for m in inp.models:
        lines.append(f"COPY --from={m.location} / {MODELS_DIR}/{m.name}/{m.version}/")
    if inp.env:
        # Before kaci's own ENV line, so a user's value never replaces AZUREML_MODEL_DIR.
        lines += [f"ENV {k}={env_value(v)}" for k, v in sorted(inp.env.items())]
    lines += [
        f"ENV AZUREML_MODEL_DIR={model_dir_env(inp.models)} "
        f"AZUREML_ENTRY_SCRIPT={APP_DIR}/score.py "
        f"PYTHONPATH={RUNTIME_DIR} HOME=/tmp SERVER_PORT={PORT}",
        f"WORKDIR {APP_DIR}",
        "USER 1000:1000",
        f"EXPOSE {PORT}",
        "CMD " + _json(["python", "-m", "kaci_runtime", "--port", str(PORT)]),
    ]
    if inp.source_dir is not None:
        # The code folder at the app root, so score.py imports its siblings (Azure's
        # source_directory); score.py itself is copied over it below.
        ref, folder = inp.source_dir
        lines.append(f"COPY --from={ref} {folder.rstrip('/') or ''}/ {APP_DIR}/")
    lines += [
        # Last, so a score.py change rebuilds this one step only (COPY ignores USER:
        # the file stays root's, readable by all).
        f"COPY score.py {APP_DIR}/score.py",
    ]
    return "\n".join(lines) + "\n"


def scoring_context(inp: ScoringImageInputs) -> dict[str, bytes]:
    """Build context files, path -> bytes (the Dockerfile included)."""
    files: dict[str, bytes] = {
        "Dockerfile": scoring_dockerfile(inp).encode(),
        "requirements.txt": ("\n".join(inp.requirements) + "\n").encode(),
        "install-requirements.sh": INSTALL_SCRIPT.encode(),
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


def pick_model(candidates: Sequence[Mapping[str, Any]], owner_uids: set[str]) -> Mapping[str, Any]:
    """Which Model object an Image takes when several share a modelName (pure).

    A Webservice's `modelFiles` makes a Model of its own, which may share its
    modelName with a registered one (the MNIST demo does this). The rule, in order:
    1. a Model owned by the same object as the Image (its Webservice's own files);
    2. a Model no Webservice owns (a registered model);
    3. the first by object name (any other Webservice's files: a stable choice).
    The chosen object's name is in the Image's status (`models[].object`)."""

    def owners(m: Mapping[str, Any]) -> set[str]:
        return {o.get("uid", "") for o in m["metadata"].get("ownerReferences") or []}

    def ws_owned(m: Mapping[str, Any]) -> bool:
        refs = m["metadata"].get("ownerReferences") or []
        return any(o.get("kind") == "Webservice" for o in refs)

    ranked = sorted(
        candidates,
        key=lambda m: (not (owners(m) & owner_uids), ws_owned(m), m["metadata"]["name"]),
    )
    return ranked[0]


def model_layer(
    ref: Mapping[str, Any], model: Mapping[str, Any], registry: str | None = None
) -> ModelLayer:
    """The stored version of `model` that `ref` asks for (pure): the latest when no
    version is named. Raises Waiting when there is none (yet)."""
    status = model.get("status") or {}
    versions = list(status.get("versions") or [])
    obj = str((model.get("metadata") or {}).get("name") or "")
    if not versions:
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("reason") == "BadSource":
            # The Model was refused for good (until its spec changes): say why here
            # too, so the Image and its Webservice fail instead of waiting forever.
            raise Waiting(
                f"model {ref['name']}: {ready.get('message', '')}", "ModelFailed", failed=True
            )
        raise Waiting(f"model {ref['name']} has no stored version yet", "ModelNotReady")
    if ref.get("version"):
        match = [v for v in versions if v.get("version") == ref["version"]]
        if not match:
            latest = max(int(v["version"]) for v in versions)
            raise Waiting(
                f"model {ref['name']} has no version {ref['version']} (latest is {latest})",
                "ModelVersionNotFound",
                failed=True,
            )
        v = match[0]
    else:
        v = max(versions, key=lambda x: int(x["version"]))
    location = str(v["location"])
    namespace = (model.get("metadata") or {}).get("namespace")
    if registry is not None and v.get("digest") and namespace:
        # By the registry's name now (the builder's), not the one the Model was stored
        # under: the push address may have been renamed since (e.g. a builder that
        # moved into the cluster reaches the same registry as the node's address).
        location = names.model_image_ref(registry, str(namespace), str(ref["name"]), v["digest"])
    return ModelLayer(str(ref["name"]), int(v["version"]), location, obj)
