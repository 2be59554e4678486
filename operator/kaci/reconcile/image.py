"""An Image's pass: gather the inputs, build once per content hash, push.

Steps: inputs (score.py, conda file, the Models' stored versions) -> content hash
-> built already? -> build and push (progress: Running, then the log tail) ->
status once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from kaci import api
from kaci.errors import InfraDown, UserError, Waiting
from kaci.reconcile.common import Edges, Obj, Outcome, meta, short, tell, write_status
from kaci.render import conda, names, scorecheck
from kaci.render import image as render
from kaci.settings import Settings
from kaci.status.conditions import ready_only

# How often the build log's tail is written into status while a build runs.
LOG_EVERY_S = 3.0


@dataclass(frozen=True)
class ImageSeen:
    """What an Image's pass observes: the Image, the Models of its namespace by
    modelName, and the other Images sharing its imageName (versions count per name)."""

    body: Obj
    models: Mapping[str, Sequence[Obj]]
    same_name: Sequence[Obj]


def image_name_of(image: Mapping[str, Any]) -> str:
    return str((image.get("spec") or {}).get("imageName") or image["metadata"]["name"])


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


def read_text(edges: Edges, namespace: str, src: Mapping[str, Any], what: str) -> str:
    """An inline text, or a ConfigMap key's (a missing ConfigMap may appear: wait)."""
    if "inline" in src:
        return str(src["inline"])
    ref = src["configMap"]
    data = edges.read_config_map(namespace, ref["name"])
    if data is None:
        raise Waiting(
            f"{what}: ConfigMap {ref['name']} not found in namespace {namespace}",
            "ConfigMapNotFound",
            failed=True,
        )
    if ref["key"] not in data:
        raise UserError(
            f"{what}: ConfigMap {ref['name']} has no key {ref['key']!r} "
            f"(it has: {', '.join(sorted(data)) or 'none'})"
        )
    return str(data[ref["key"]])


def resolve_models(seen: ImageSeen, registry: str | None = None) -> list[render.ModelLayer]:
    namespace, _, _ = meta(seen.body)
    owner_uids = {o.get("uid", "") for o in seen.body["metadata"].get("ownerReferences") or []}
    out: list[render.ModelLayer] = []
    for ref in seen.body["spec"].get("models") or []:
        found = list(seen.models.get(str(ref["name"])) or [])
        if not found:
            raise Waiting(
                f"model {ref['name']} not found in namespace {namespace}: "
                f"register it first (a Model with modelName {ref['name']})",
                api.REASON_MODEL_NOT_FOUND,
                failed=True,
            )
        out.append(render.model_layer(ref, render.pick_model(found, owner_uids), registry))
    return out


def source_dir_of(spec: Mapping[str, Any], settings: Settings) -> tuple[str, str] | None:
    """spec.sourceDirectory (an OCI image holding the code folder) as (reference, folder),
    the reference as the builder reaches it (the SDK names kaci's registry as it sees it)."""
    image = (spec.get("sourceDirectory") or {}).get("image")
    if not image:
        return None
    ref = names.as_the_builder_sees(
        str(image["reference"]), settings.registry, settings.pull_registry
    )
    return ref, str(image.get("path") or "/")


def gather_inputs(seen: ImageSeen, edges: Edges) -> render.ScoringImageInputs:
    namespace, _, _ = meta(seen.body)
    spec = seen.body["spec"]
    settings = edges.settings
    score = read_text(edges, namespace, spec["executionScript"], "executionScript")
    problem = scorecheck.problem(score)
    if problem:
        raise UserError(problem)
    conda_reqs: list[str] = []
    if spec.get("condaFile"):
        try:
            conda_reqs = conda.pip_requirements(
                read_text(edges, namespace, spec["condaFile"], "condaFile")
            )
        except conda.CondaFileError as e:
            raise UserError(str(e)) from e
    reqs = conda.merge_requirements(
        runtime_requirements(), conda_reqs, list(spec.get("pipRequirements") or [])
    )
    return render.ScoringImageInputs(
        base_image=names.as_the_builder_sees(
            str(spec.get("baseImage") or settings.default_base_image),
            settings.registry,
            settings.pull_registry,
        ),
        requirements=reqs,
        score_py=score.encode(),
        models=resolve_models(seen, settings.registry),
        runtime_files=runtime_files(),
        docker_steps=str(spec.get("dockerSteps") or ""),
        source_dir=source_dir_of(spec, settings),
        env={str(k): str(v) for k, v in (spec.get("environmentVariables") or {}).items()},
        layer_compression=spec.get("layerCompression"),
        pip=render.PipOptions(
            settings.pip_index_url, settings.pip_find_links, settings.pip_no_index
        ),
    )


def next_version(
    own: Mapping[str, Any], same_name: Sequence[Mapping[str, Any]], content: str
) -> int:
    """Versions count per imageName (pure): unchanged content keeps its version; new
    content gets one more than any Image of that name has (status is the durable
    counter, so it survives operator restarts)."""
    if own.get("contentHash") == content and own.get("version"):
        return int(own["version"])
    others = [int((i.get("status") or {}).get("version") or 0) for i in same_name]
    return max([int(own.get("version") or 0), *others]) + 1


def models_status(models: Sequence[render.ModelLayer]) -> list[dict[str, Any]]:
    return [{"name": m.name, "version": m.version, "object": m.object} for m in models]


class BuildProgress:
    """Streams build lines into Events and the log tail into status, at most every 3 s."""

    def __init__(self, edges: Edges, body: Mapping[str, Any]) -> None:
        self.edges, self.body = edges, body
        self.last = 0.0
        self.tail = ""
        self.lock = threading.Lock()

    def __call__(self, lines: list[str], tail: str) -> None:
        self.tail = tail
        for line in lines:
            if line.startswith(("Step ", "pushed ")):
                self.edges.event(self.body, False, "Building", line[:1000])
        with self.lock:
            if time.monotonic() - self.last >= LOG_EVERY_S:
                self.last = time.monotonic()
                namespace, name, _ = meta(self.body)
                self.edges.patch_status(api.IMAGES, namespace, name, {"buildLog": tail})


def _state(
    old: Mapping[str, Any],
    gen: int,
    state: str,
    ok: bool,
    reason: str,
    message: str,
    now: str,
    **fields: Any,
) -> Obj:
    return ready_only(old, gen, ok, reason, message, now, state=state, **fields)


def reconcile_image(seen: ImageSeen, edges: Edges) -> Outcome:
    body = seen.body
    _, _, gen = meta(body)
    old = body.get("status") or {}
    now = edges.now
    try:
        inputs = gather_inputs(seen, edges)
        context = render.scoring_context(inputs)
        content = render.content_hash(context, edges.base_digest(inputs.base_image))
    except UserError as e:
        write_status(
            edges, api.IMAGES, body, _state(old, gen, api.FAILED, False, e.reason, short(e), now())
        )
        return Outcome.FAILED
    except (Waiting, InfraDown) as e:
        failed = isinstance(e, Waiting) and e.failed
        state = api.FAILED if failed else api.NOT_STARTED
        write_status(
            edges, api.IMAGES, body, _state(old, gen, state, False, e.reason, short(e), now())
        )
        return Outcome.WAIT
    models = models_status(inputs.models)
    version = next_version(old, seen.same_name, content)
    if (
        old.get("contentHash") == content
        and old.get("state") == api.SUCCEEDED
        and old.get("imageLocation")
    ):
        done = _state(
            old,
            gen,
            api.SUCCEEDED,
            True,
            api.SUCCEEDED,
            f"image version {version} is built",
            now(),
            models=models,
        )
        write_status(edges, api.IMAGES, body, done)
        return Outcome.DONE
    return build(seen, edges, inputs, context, content, version, models)


def _write(
    edges: Edges,
    body: Mapping[str, Any],
    state: str,
    ok: bool,
    reason: str,
    message: str,
    **fields: Any,
) -> None:
    """Patch the Image's status now (a build's progress and its end)."""
    namespace, name, gen = meta(body)
    st = _state(body.get("status") or {}, gen, state, ok, reason, message, edges.now(), **fields)
    edges.patch_status(api.IMAGES, namespace, name, st)
    tell(edges, body, st)


def build_failed(
    edges: Edges, body: Mapping[str, Any], e: Exception, fields: Mapping[str, Any]
) -> Outcome:
    """A build that did not end with a pushed image: the builder was away (retry),
    the inputs failed (Failed, the user fixes them), or something else stopped it
    (the API server while streaming the log, a bug: never left saying Running)."""
    if isinstance(e, InfraDown):
        _write(edges, body, api.NOT_STARTED, False, e.reason, short(e), buildLog=e.log_tail)
        return Outcome.WAIT
    if isinstance(e, UserError):
        kept = {k: fields[k] for k in ("version", "contentHash")}
        _write(
            edges,
            body,
            api.FAILED,
            False,
            api.REASON_BUILD_FAILED,
            short(e),
            buildLog=e.log_tail,
            **kept,
        )
        return Outcome.FAILED
    message = f"the build stopped unexpectedly ({e}); trying again"
    _write(edges, body, api.NOT_STARTED, False, api.REASON_BUILD_INTERRUPTED, message)
    return Outcome.WAIT


def build(
    seen: ImageSeen,
    edges: Edges,
    inputs: render.ScoringImageInputs,
    context: Mapping[str, bytes],
    content: str,
    version: int,
    models: list[dict[str, Any]],
) -> Outcome:
    body = seen.body
    namespace, _, _ = meta(body)
    image_name = image_name_of(body)
    settings = edges.settings
    tag = f"{names.scoring_repo(settings.registry, namespace, image_name)}:{content[:24]}"
    progress = BuildProgress(edges, body)
    fields = {"version": version, "contentHash": content, "models": models}

    def mark_running() -> None:
        # Progress, not the pass's status: a build takes a while, and status says so.
        _write(
            edges, body, api.RUNNING, False, api.RUNNING, f"building {tag}", buildLog="", **fields
        )

    try:
        digest, built = edges.build(
            context, tag, progress, mark_running, compression=inputs.layer_compression
        )
    except Exception as e:
        return build_failed(edges, body, e, fields)
    if built:
        build_log = f"{progress.tail}\nbuilt and pushed {tag}"
    else:
        build_log = f"reused {tag}: an image with the same inputs was already built"
    location = f"{names.scoring_repo(settings.pull_registry, namespace, image_name)}@{digest}"
    message = f"image version {version} is built"
    _write(
        edges,
        body,
        api.SUCCEEDED,
        True,
        api.SUCCEEDED,
        message,
        imageLocation=location,
        buildLog=build_log,
        **fields,
    )
    return Outcome.DONE
