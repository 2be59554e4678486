"""Image: render the Dockerfile and context, build once per content hash, push."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import kopf

from kaci import conda, conditions, imagerender, kube, names, scorecheck
from kaci.builder import BuildError, EngineUnavailableError
from kaci.buildlog import BuildLog
from kaci.handlers.common import (
    builder,
    image_name_of,
    instance_filter,
    model_name_of,
    now,
)
from kaci.modelsource import SourceNotReadyError
from kaci.settings import get_settings

PLURAL = "images"
LOG_TAIL_LINES = 30


class ImageSpecError(ValueError):
    pass


def runtime_files() -> dict[str, bytes]:
    """kaci_runtime's source, as installed beside the operator."""
    spec = find_spec("kaci_runtime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("kaci_runtime is not installed beside the operator")
    root = Path(next(iter(spec.submodule_search_locations)))
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def runtime_requirements() -> list[str]:
    """The `runtime` extra of the kaci distribution: what scoring images need."""
    out: list[str] = []
    for req in metadata.requires("kaci") or []:
        if ";" in req and "extra" in req.split(";", 1)[1] and '"runtime"' in req.split(";", 1)[1]:
            out.append(req.split(";", 1)[0].strip())
    return out


def read_text(namespace: str, src: dict[str, Any], what: str) -> str:
    if "inline" in src:
        return str(src["inline"])
    ref = src["configMap"]
    cm = kube.read_or_none(kube.core().read_namespaced_config_map, ref["name"], namespace)
    if cm is None:
        raise SourceNotReadyError(
            "ConfigMapNotFound",
            f"{what}: ConfigMap {ref['name']} not found in namespace {namespace}",
        )
    data = cm.data or {}
    if ref["key"] not in data:
        raise ImageSpecError(
            f"{what}: ConfigMap {ref['name']} has no key {ref['key']!r} "
            f"(it has: {', '.join(sorted(data)) or 'none'})"
        )
    return str(data[ref["key"]])


def pick_model(candidates: list[dict[str, Any]], owner_uids: set[str]) -> dict[str, Any]:
    """Several Model objects may share a modelName (a Webservice's modelFiles makes its
    own): an Image owned by a Webservice takes that Webservice's Model; others take a
    Model no Webservice owns; then the first by object name (pure)."""

    def owners(m: dict[str, Any]) -> set[str]:
        return {o.get("uid", "") for o in m["metadata"].get("ownerReferences") or []}

    def ws_owned(m: dict[str, Any]) -> bool:
        refs = m["metadata"].get("ownerReferences") or []
        return any(o.get("kind") == "Webservice" for o in refs)

    ranked = sorted(
        candidates,
        key=lambda m: (not (owners(m) & owner_uids), ws_owned(m), m["metadata"]["name"]),
    )
    return ranked[0]


def _is_failure(reason: str) -> bool:
    """A dependency the user must fix (looked at again now and then), not one on its way."""
    return reason.endswith("NotFound") or reason == "ModelFailed"


def model_layer(ref: Mapping[str, Any], model: Mapping[str, Any]) -> imagerender.ModelLayer:
    """The stored version of `model` that `ref` asks for (pure): the latest when no
    version is named. Raises SourceNotReadyError when there is none (yet)."""
    status = model.get("status") or {}
    versions = list(status.get("versions") or [])
    if not versions:
        ready = conditions.get(status.get("conditions"), "Ready")
        if ready is not None and ready.get("reason") == "BadSource":
            # The Model was refused for good (until its spec changes): say why here
            # too, so the Image and its Webservice fail instead of waiting forever.
            raise SourceNotReadyError(
                "ModelFailed", f"model {ref['name']}: {ready.get('message', '')}"
            )
        raise SourceNotReadyError("ModelNotReady", f"model {ref['name']} has no stored version yet")
    if ref.get("version"):
        match = [v for v in versions if v.get("version") == ref["version"]]
        if not match:
            latest = max(int(v["version"]) for v in versions)
            raise SourceNotReadyError(
                "ModelVersionNotFound",
                f"model {ref['name']} has no version {ref['version']} (latest is {latest})",
            )
        v = match[0]
    else:
        v = max(versions, key=lambda x: int(x["version"]))
    return imagerender.ModelLayer(ref["name"], int(v["version"]), str(v["location"]))


def resolve_models(
    namespace: str, refs: list[dict[str, Any]], owner_uids: set[str]
) -> list[imagerender.ModelLayer]:
    models = kube.list_custom("models", namespace)
    out: list[imagerender.ModelLayer] = []
    for ref in refs:
        found = [m for m in models if model_name_of(m) == ref["name"]]
        if not found:
            raise SourceNotReadyError(
                "ModelNotFound",
                f"model {ref['name']} not found in namespace {namespace}: "
                f"register it first (a Model with modelName {ref['name']})",
            )
        out.append(model_layer(ref, pick_model(found, owner_uids)))
    return out


def render_inputs(
    namespace: str, spec: dict[str, Any], owner_uids: set[str]
) -> imagerender.ScoringImageInputs:
    settings = get_settings()
    score = read_text(namespace, spec["executionScript"], "executionScript")
    problem = scorecheck.problem(score)
    if problem:
        raise ImageSpecError(problem)
    conda_reqs: list[str] = []
    if spec.get("condaFile"):
        try:
            conda_reqs = conda.pip_requirements(
                read_text(namespace, spec["condaFile"], "condaFile")
            )
        except conda.CondaFileError as e:
            raise ImageSpecError(str(e)) from e
    reqs = conda.merge_requirements(
        runtime_requirements(), conda_reqs, list(spec.get("pipRequirements") or [])
    )
    return imagerender.ScoringImageInputs(
        base_image=spec.get("baseImage") or settings.default_base_image,
        requirements=reqs,
        score_py=score.encode(),
        models=resolve_models(namespace, list(spec.get("models") or []), owner_uids),
        runtime_files=runtime_files(),
        docker_steps=str(spec.get("dockerSteps") or ""),
        pip=imagerender.PipOptions(
            settings.pip_index_url, settings.pip_find_links, settings.pip_no_index
        ),
    )


def next_image_version(namespace: str, image_name: str, own: dict[str, Any], content: str) -> int:
    """Versions count per imageName: unchanged content keeps its version; new content
    gets one more than any Image of that name in the namespace has (status is the
    durable counter, so it survives operator restarts)."""
    if own.get("contentHash") == content and own.get("version"):
        return int(own["version"])
    others = [
        int(i.get("status", {}).get("version") or 0)
        for i in kube.list_custom(PLURAL, namespace)
        if image_name_of(i) == image_name
    ]
    return max([int(own.get("version") or 0), *others]) + 1


class _Progress:
    """Streams build lines into Events and the log tail into status, at most every 3 s."""

    def __init__(self, body: kopf.Body, namespace: str, name: str) -> None:
        self.body, self.namespace, self.name = body, namespace, name
        self.last = 0.0
        self.lock = threading.Lock()
        self.log: BuildLog | None = None

    def __call__(self, lines: list[str], log: BuildLog) -> None:
        self.log = log
        for line in lines:
            if line.startswith("Step ") or line.startswith("pushed "):
                kopf.info(self.body, reason="Building", message=line[:1000])
        with self.lock:
            if time.monotonic() - self.last >= 3:
                self.last = time.monotonic()
                kube.patch_status(
                    PLURAL, self.namespace, self.name, {"buildLog": log.tail(LOG_TAIL_LINES)}
                )


def _set(
    namespace: str,
    name: str,
    old: dict[str, Any],
    gen: int,
    ok: bool,
    reason: str,
    message: str,
    **fields: Any,
) -> None:
    cond = conditions.condition("Ready", ok, reason, message, gen)
    kube.patch_status(
        PLURAL,
        namespace,
        name,
        {
            **fields,
            "observedGeneration": gen,
            "conditions": conditions.merge(old.get("conditions"), [cond], now()),
        },
    )


def _engine_unavailable(
    body: kopf.Body, namespace: str, name: str, st: dict[str, Any], gen: int, e: BuildError
) -> kopf.TemporaryError:
    """Not the user's fault and not final: say so in status, and build again in a while."""
    _set(
        namespace,
        name,
        st,
        gen,
        False,
        "EngineUnavailable",
        str(e),
        state="NotStarted",
        buildLog=e.log_tail,
    )
    kopf.warn(body, reason="EngineUnavailable", message=str(e)[:1000])
    return kopf.TemporaryError(str(e), delay=15)


@kopf.on.resume(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
@kopf.on.create(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
@kopf.on.update(names.GROUP, names.VERSION, PLURAL, labels=instance_filter())
def reconcile_image(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    status: kopf.Status,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    assert namespace is not None  # all three kinds are namespaced
    settings = get_settings()
    gen = int(body["metadata"].get("generation", 1))
    st = dict(status)
    image_name = image_name_of(dict(body))
    if not st.get("state"):
        _set(
            namespace, name, st, gen, False, "NotStarted", "preparing the build", state="NotStarted"
        )
    try:
        owner_uids = {o.get("uid", "") for o in body["metadata"].get("ownerReferences") or []}
        inputs = render_inputs(namespace, dict(spec), owner_uids)
    except ImageSpecError as e:
        _set(namespace, name, st, gen, False, "BadSpec", str(e), state="Failed")
        raise kopf.PermanentError(str(e)) from e
    except SourceNotReadyError as e:
        _set(
            namespace,
            name,
            st,
            gen,
            False,
            e.reason,
            str(e),
            state="Failed" if _is_failure(e.reason) else "NotStarted",
        )
        if not _is_failure(e.reason):
            return  # on its way: the Model's next state wakes this Image (model.wake_images)
        raise kopf.TemporaryError(str(e), delay=15) from e

    b = builder()
    context = imagerender.scoring_context(inputs)
    try:
        content = imagerender.content_hash(context, b.base_digest(inputs.base_image))
    except EngineUnavailableError as e:
        raise _engine_unavailable(body, namespace, name, st, gen, e) from e
    models = [{"name": m.name, "version": m.version} for m in inputs.models]
    version = next_image_version(namespace, image_name, st, content)
    if (
        st.get("contentHash") == content
        and st.get("state") == "Succeeded"
        and st.get("imageLocation")
    ):
        _set(namespace, name, st, gen, True, "Succeeded", "the image is built", models=models)
        return
    tag = f"{names.scoring_repo(settings.registry, namespace, image_name)}:{content[:24]}"
    progress = _Progress(body, namespace, name)

    def mark_running() -> None:
        _set(
            namespace,
            name,
            st,
            gen,
            False,
            "Running",
            f"building {tag}",
            state="Running",
            version=version,
            contentHash=content,
            models=models,
            buildLog="",
        )

    try:
        digest, built = b.ensure(context, tag, progress, before_build=mark_running)
    except EngineUnavailableError as e:
        raise _engine_unavailable(body, namespace, name, st, gen, e) from e
    except BuildError as e:
        _set(
            namespace,
            name,
            st,
            gen,
            False,
            "BuildFailed",
            str(e),
            state="Failed",
            version=version,
            contentHash=content,
            buildLog=e.log_tail,
        )
        kopf.warn(body, reason="BuildFailed", message=str(e)[:1000])
        raise kopf.PermanentError(str(e)) from e
    except Exception as e:
        # Anything else (the API server while streaming the log, a bug) ends this attempt
        # too: the Image must not go on saying Running while kopf waits to try again.
        message = f"the build stopped unexpectedly ({e}); trying again"
        _set(namespace, name, st, gen, False, "BuildInterrupted", message, state="NotStarted")
        kopf.warn(body, reason="BuildInterrupted", message=message[:1000])
        raise kopf.TemporaryError(message, delay=30) from e
    if built:
        tail = progress.log.tail(LOG_TAIL_LINES) if progress.log else ""
        build_log = f"{tail}\nbuilt and pushed {tag}"
    else:
        build_log = f"reused {tag}: an image with the same inputs was already built"
    location = f"{names.scoring_repo(settings.pull_registry, namespace, image_name)}@{digest}"
    _set(
        namespace,
        name,
        st,
        gen,
        True,
        "Succeeded",
        f"image version {version} is built",
        state="Succeeded",
        version=version,
        contentHash=content,
        imageLocation=location,
        models=models,
        buildLog=build_log,
    )
    kopf.info(body, reason="Succeeded", message=f"{image_name} version {version}: {location}")
    # The Webservices deploying this image are woken by its new status
    # (webservice.wake_webservices).
    logger.info(f"image {image_name} version {version} at {location}")
