"""Each kind's pass from a given observed state: what it asks the outside for, the
status it writes (once, and only on a change) and its outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kaci import api
from kaci.errors import UserError, Waiting
from kaci.reconcile.common import Outcome
from kaci.reconcile.image import ImageSeen, reconcile_image
from kaci.reconcile.model import reconcile_model
from kaci.reconcile.webservice import WebserviceSeen, reconcile_webservice
from kaci.render import names
from kaci.render import webservice as render
from kaci.settings import Settings

NS = "ns"
SCORE = "def init():\n    pass\n\ndef run(raw):\n    return raw\n"
LOCATION = "reg/kaci/ns/img@sha256:abc"


class Recorder:
    """Edges that record every side effect and answer from what the test gave."""

    def __init__(self, **answers: Any) -> None:
        self.settings = Settings(registry="reg", default_base_image="base")
        self.calls: list[tuple[str, Any]] = []
        self.readied: list[tuple[str, str]] = []
        self.compressions: list[str | None] = []
        self.answers = answers

    def now(self) -> str:
        return "2026-12-01T00:00:00Z"

    def epoch(self) -> float:
        return 1_000_000.0

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.calls.append(("status", status))

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", manifest["kind"]))
        return manifest

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.calls.append(("delete", kind))

    def node_address(self) -> str | None:
        return "192.0.2.7"

    def event(self, body: Mapping[str, Any], warning: bool, reason: str, message: str) -> None:
        self.calls.append(("event", reason))

    def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.answers.get("config_maps", {}).get(name)  # type: ignore[no-any-return]

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    def fetch_model(
        self, namespace: str, source: Mapping[str, Any], owner: str
    ) -> dict[str, bytes]:
        fetch: Callable[[], dict[str, bytes]] = self.answers["fetch"]
        return fetch()

    def store_model(self, files: Mapping[str, bytes], ref: str) -> tuple[str, bool]:
        self.calls.append(("store", ref))
        return "sha256:m", True

    def base_digest(self, ref: str) -> str | None:
        return "sha256:base"

    def build(
        self,
        context: Mapping[str, bytes],
        ref: str,
        on_log: Any,
        before: Any,
        compression: str | None = None,
    ) -> tuple[str, bool]:
        self.compressions.append(compression)
        before()
        self.calls.append(("build", ref))
        return "sha256:built", True

    def pod_log(self, namespace: str, pod: str, previous: bool) -> str:
        return ""

    def became_ready(self, kind: str, since: str) -> None:
        self.readied.append((kind, since))

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]

    def statuses(self) -> list[dict[str, Any]]:
        return [c[1] for c in self.calls if c[0] == "status"]


def obj(
    kind: str, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": spec,
        "status": status or {},
    }


DC = {"cpuCores": 0.25, "memoryGb": 1}


def built_image(name: str = "img") -> dict[str, Any]:
    return obj(
        api.IMAGE,
        name,
        {"models": [], "executionScript": {"inline": SCORE}},
        {"state": api.SUCCEEDED, "imageLocation": LOCATION, "version": 1, "models": []},
    )


# --- Webservice ---------------------------------------------------------------


def test_option_3_applies_the_deployment_and_service_then_waits_for_the_pod() -> None:
    ws = obj(api.WEBSERVICE, "w", {"image": {"name": "img"}, "deploymentConfig": DC})
    edges = Recorder()
    out = reconcile_webservice(WebserviceSeen(ws, images=[built_image()]), edges)
    assert out is Outcome.WAIT
    assert edges.kinds() == [
        "apply",
        "apply",
        "status",
        "event",
    ]  # Deployment, Service, status once
    assert edges.calls[-1] == ("event", "PodPending")  # Transitioning, told in an Event
    st = edges.statuses()[0]
    assert st["state"] == api.TRANSITIONING
    assert st["imageLocation"] == LOCATION


def _serving(ws: dict[str, Any], edges: Recorder) -> WebserviceSeen:
    """The observed children exactly as the last pass applied them, a ready Pod, and
    an EndpointSlice routing to it."""
    owner = names.owner_reference(ws, api.WEBSERVICE)
    template = render.pod_template("w", LOCATION, DC, None, None, None)
    dep = render.with_desired_hash(render.deployment("w", NS, owner, template, None))
    svc = render.with_desired_hash(render.service("w", NS, owner, None))
    annotations = template["metadata"]["annotations"]
    pod = {
        "metadata": {"name": "w-1", "annotations": annotations},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    slices = [{"endpoints": [{"addresses": ["10.0.0.9"], "conditions": {"ready": True}}]}]
    return WebserviceSeen(
        ws, images=[built_image()], deployment=dep, service=svc, pods=[pod], endpoint_slices=slices
    )


def test_a_healthy_webservice_at_rest_makes_no_request() -> None:
    ws = obj(api.WEBSERVICE, "w", {"image": {"name": "img"}, "deploymentConfig": DC})
    first = Recorder()
    assert reconcile_webservice(_serving(ws, first), first) is Outcome.DONE
    # Nothing to apply (the children carry its hash); the new state told in an Event.
    assert first.kinds() == ["status", "event"]
    assert first.calls[-1] == ("event", "Ready")
    assert first.statuses()[0]["state"] == api.HEALTHY
    ws["status"] = first.statuses()[0]
    again = Recorder()
    assert reconcile_webservice(_serving(ws, again), again) is Outcome.DONE
    assert again.calls == []  # a resync of a converged object costs nothing


def test_a_missing_image_fails_with_the_reason_and_is_looked_at_again() -> None:
    ws = obj(api.WEBSERVICE, "w", {"image": {"name": "nope"}, "deploymentConfig": DC})
    edges = Recorder()
    assert reconcile_webservice(WebserviceSeen(ws), edges) is Outcome.WAIT
    st = edges.statuses()[0]
    assert st["state"] == api.FAILED
    assert st["error"]["code"] == api.REASON_IMAGE_NOT_FOUND
    assert "apply" not in edges.kinds()


def test_a_building_image_keeps_the_webservice_transitioning() -> None:
    image = built_image()
    image["status"] = {"state": api.RUNNING}
    ws = obj(api.WEBSERVICE, "w", {"image": {"name": "img"}, "deploymentConfig": DC})
    edges = Recorder()
    assert reconcile_webservice(WebserviceSeen(ws, images=[image]), edges) is Outcome.WAIT
    assert edges.statuses()[0]["state"] == api.TRANSITIONING


def test_option_1_applies_its_model_and_image_once() -> None:
    spec = {
        "modelFiles": {"configMap": {"name": "m"}, "modelName": "mnist"},
        "imageConfig": {"executionScript": {"inline": SCORE}, "runtime": "python"},
        "deploymentConfig": DC,
    }
    ws = obj(api.WEBSERVICE, "w", spec)
    edges = Recorder()
    reconcile_webservice(WebserviceSeen(ws), edges)
    assert edges.kinds()[:2] == ["apply", "apply"]  # the child Model and Image
    owner = names.owner_reference(ws, api.WEBSERVICE)
    model_spec, image_spec = render.child_specs("w", spec)
    assert model_spec is not None
    assert image_spec is not None
    model = render.with_desired_hash(render.child(api.MODEL, "w", NS, owner, model_spec))
    image = render.with_desired_hash(render.child(api.IMAGE, "w", NS, owner, image_spec))
    again = Recorder()
    reconcile_webservice(WebserviceSeen(ws, child_model=model, child_image=image), again)
    assert "apply" not in again.kinds()


# --- Model ----------------------------------------------------------------------


def test_a_stored_model_is_not_fetched_again() -> None:
    body = obj(api.MODEL, "m", {"source": {"configMap": {"name": "m"}}})
    body["status"] = {
        "observedGeneration": 1,
        "location": "reg/x",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    edges = Recorder(fetch=lambda: {"a": b"1"})
    assert reconcile_model(body, edges) is Outcome.DONE
    assert edges.calls == []


def test_a_new_model_is_stored_as_version_1() -> None:
    body = obj(api.MODEL, "m", {"source": {"configMap": {"name": "m"}}})
    edges = Recorder(fetch=lambda: {"model.pkl": b"1"})
    assert reconcile_model(body, edges) is Outcome.DONE
    assert edges.kinds() == ["store", "status", "event", "event"]  # Ready, Registered
    assert edges.statuses()[0]["version"] == 1


def test_a_bad_source_fails_and_one_on_its_way_waits() -> None:
    def bad() -> dict[str, bytes]:
        raise UserError("file name '../x' escapes the model folder", "BadSource")

    def missing() -> dict[str, bytes]:
        raise Waiting("ConfigMap m not found", "ConfigMapNotFound", failed=True)

    body = obj(api.MODEL, "m", {"source": {"configMap": {"name": "m"}}})
    failed = Recorder(fetch=bad)
    assert reconcile_model(body, failed) is Outcome.FAILED
    assert failed.statuses()[0]["conditions"][0]["reason"] == "BadSource"
    waiting = Recorder(fetch=missing)
    assert reconcile_model(body, waiting) is Outcome.WAIT
    assert waiting.statuses()[0]["conditions"][0]["reason"] == "ConfigMapNotFound"


# --- Image ----------------------------------------------------------------------


def test_an_image_waits_for_its_score_configmap_as_failed() -> None:
    body = obj(
        api.IMAGE,
        "img",
        {"models": [], "executionScript": {"configMap": {"name": "s", "key": "score.py"}}},
    )
    edges = Recorder()
    assert reconcile_image(ImageSeen(body, {}, []), edges) is Outcome.WAIT
    st = edges.statuses()[0]
    assert st["state"] == api.FAILED
    assert st["conditions"][0]["reason"] == "ConfigMapNotFound"


def test_an_image_builds_once_then_is_left_alone() -> None:
    body = obj(api.IMAGE, "img", {"models": [], "executionScript": {"inline": SCORE}})
    edges = Recorder()
    assert reconcile_image(ImageSeen(body, {}, []), edges) is Outcome.DONE
    assert edges.kinds() == ["status", "event", "build", "status", "event"]  # Running, Succeeded
    assert [c for c in edges.calls if c[0] == "event"] == [
        ("event", api.RUNNING),
        ("event", api.SUCCEEDED),
    ]
    done = edges.statuses()[-1]
    assert done["state"] == api.SUCCEEDED
    assert done["version"] == 1
    body["status"] = done
    again = Recorder()
    assert reconcile_image(ImageSeen(body, {}, []), again) is Outcome.DONE
    assert again.calls == []


def test_a_score_py_without_run_fails_before_any_build() -> None:
    body = obj(
        api.IMAGE, "img", {"models": [], "executionScript": {"inline": "def init():\n    pass\n"}}
    )
    edges = Recorder()
    assert reconcile_image(ImageSeen(body, {}, []), edges) is Outcome.FAILED
    assert "build" not in edges.kinds()
    assert "run(raw_data)" in edges.statuses()[0]["conditions"][0]["message"]


def test_a_webservice_turning_healthy_reports_its_deploy_time() -> None:
    ws = obj(api.WEBSERVICE, "w", {"image": {"name": "img"}, "deploymentConfig": DC})
    ws["metadata"]["creationTimestamp"] = "2026-12-01T10:00:00Z"
    edges = Recorder()
    reconcile_webservice(_serving(ws, edges), edges)
    assert edges.readied == [(api.WEBSERVICE, "2026-12-01T10:00:00Z")]
    ws["status"] = edges.statuses()[0]
    again = Recorder()
    reconcile_webservice(_serving(ws, again), again)
    assert again.readied == []  # still Ready: nothing new to measure


def test_an_images_layer_compression_reaches_the_builder_and_its_tag() -> None:
    spec = {"models": [], "executionScript": {"inline": SCORE}}
    default, gzip = Recorder(), Recorder()
    reconcile_image(ImageSeen(obj(api.IMAGE, "img", spec), {}, []), default)
    reconcile_image(
        ImageSeen(obj(api.IMAGE, "img", {**spec, "layerCompression": "gzip"}), {}, []), gzip
    )
    assert default.compressions == [None]
    assert gzip.compressions == ["gzip"]
    tags = [edges.statuses()[-1]["contentHash"] for edges in (default, gzip)]
    assert tags[0] != tags[1]  # the same inputs with other layers are another image


def _written_at(ws: dict[str, Any], when: str) -> None:
    """managedFields as the API server keeps them after kaci's status patch at `when`."""
    ws["metadata"]["managedFields"] = [
        {"manager": "kubectl", "operation": "Update", "time": "2026-11-30T00:00:00Z"},
        {"manager": api.MANAGER, "operation": "Update", "subresource": "status", "time": when},
    ]


def test_the_steps_of_a_start_are_told_at_most_every_few_seconds() -> None:
    ws = obj(api.WEBSERVICE, "w", {"image": {"name": "img"}, "deploymentConfig": DC})
    first = Recorder()
    reconcile_webservice(WebserviceSeen(ws, images=[built_image()]), first)
    ws["status"] = first.statuses()[0]  # Transitioning, PodPending
    starting = _serving(ws, first)
    pod = dict(starting.pods[0], status={"conditions": [{"type": "Ready", "status": "False"}]})
    seen = WebserviceSeen(**{**starting.__dict__, "pods": [pod]})
    # Recorder.epoch() is 1,000,000 s: 1970-01-12T13:46:40Z.
    _written_at(ws, "1970-01-12T13:46:38Z")  # 2 s ago: the next step waits
    held = Recorder()
    assert reconcile_webservice(seen, held) is Outcome.WAIT  # looked at again on its backoff
    assert held.statuses() == []
    _written_at(ws, "1970-01-12T13:46:35Z")  # 5 s ago: it is told
    told = Recorder()
    assert reconcile_webservice(seen, told) is Outcome.WAIT
    assert told.statuses()[0]["conditions"][0]["reason"] == "PodStarting"
    assert told.calls[-1] == ("event", "PodStarting")
    # Only the kubectl entry (not kaci's status write) is recent: nothing held.
    ws["metadata"]["managedFields"] = [
        {"manager": "kubectl", "operation": "Update", "time": "1970-01-12T13:46:40Z"}
    ]
    assert reconcile_webservice(seen, other := Recorder()) is Outcome.WAIT
    assert len(other.statuses()) == 1


def test_ready_and_failures_are_told_at_once() -> None:
    ws = obj(api.WEBSERVICE, "w", {"image": {"name": "img"}, "deploymentConfig": DC})
    first = Recorder()
    reconcile_webservice(WebserviceSeen(ws, images=[built_image()]), first)
    ws["status"] = first.statuses()[0]
    _written_at(ws, "1970-01-12T13:46:40Z")  # this very second
    ready = Recorder()
    assert reconcile_webservice(_serving(ws, ready), ready) is Outcome.DONE
    assert ready.statuses()[0]["state"] == api.HEALTHY
    crashing = _serving(ws, first)
    dead = {"terminated": {"exitCode": 1, "reason": "Error"}}
    pod_status = {"conditions": [{"type": "Ready", "status": "False"}], **_crashed(dead)}
    seen = WebserviceSeen(
        **{**crashing.__dict__, "pods": [dict(crashing.pods[0], status=pod_status)]}
    )
    failed = Recorder()
    reconcile_webservice(seen, failed)
    assert failed.statuses()[0]["error"]["code"] == "ContainerFailed"
    # A new generation is told at once too (observedGeneration moves).
    ws["metadata"]["generation"] = 2
    newer = Recorder()
    reconcile_webservice(WebserviceSeen(ws, images=[built_image()]), newer)
    assert newer.statuses()[0]["observedGeneration"] == 2


def _crashed(state: dict[str, Any]) -> dict[str, Any]:
    return {"containerStatuses": [{"name": "scoring", "state": state, "restartCount": 0}]}
