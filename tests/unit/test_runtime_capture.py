"""Request/response capture (Azure's collect_model_data) in kaci-runtime.

The settings and the record shape as pure parts; then the real server process on
127.0.0.1 writing to a folder, a real HTTP sink and stdout, score.py's own
ModelDataCollector on the same sink, sampling and the size cap.
"""

from __future__ import annotations

import http.server
import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from kaci_runtime import capture
from kaci_runtime.capture import Capture, CaptureConfigError, CaptureSettings, settings_from
from kaci_runtime.testing import LocalRuntime

SCRIPT = """
import json
from azureml.monitoring import ModelDataCollector

def init():
    global inputs_dc
    inputs_dc = ModelDataCollector("sklearn_mnist", designation="signals", feature_names=["a", "b"])

def run(raw_data):
    rows = json.loads(raw_data)["data"]
    inputs_dc.collect(rows)
    return [sum(r) for r in rows]
"""


def test_capture_is_off_unless_asked() -> None:
    assert settings_from({}) is None
    assert settings_from({"KACI_MODEL_DATA_CAPTURE": "false"}) is None


def test_the_sink_follows_what_is_given() -> None:
    on = {"KACI_MODEL_DATA_CAPTURE": "true"}
    assert settings_from(on) == CaptureSettings()
    assert settings_from({**on, "KACI_MODEL_DATA_DIR": "/data"}).sink == "folder"  # type: ignore[union-attr]
    http = settings_from({**on, "KACI_MODEL_DATA_URL": "http://sink:8080/in"})
    assert http is not None
    assert (http.sink, http.url) == ("http", "http://sink:8080/in")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KACI_MODEL_DATA_SINK": "s3"}, "one of stdout, folder, http"),
        ({"KACI_MODEL_DATA_SINK": "folder"}, "needs KACI_MODEL_DATA_DIR"),
        ({"KACI_MODEL_DATA_URL": "file:///etc/passwd"}, "http(s)"),
        ({"KACI_MODEL_DATA_SAMPLE_RATE": "1.5"}, "between 0 and 1"),
        ({"KACI_MODEL_DATA_SAMPLE_RATE": "half"}, "SAMPLE_RATE"),
        ({"KACI_MODEL_DATA_MAX_RECORD_BYTES": "10"}, "at least 256"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], says: str) -> None:
    if "KACI_MODEL_DATA_URL" in env:
        env = {**env, "KACI_MODEL_DATA_SINK": "http"}
    with pytest.raises(CaptureConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        settings_from({"KACI_MODEL_DATA_CAPTURE": "1", **env})


class Kept:
    """A sink that keeps what it is given (the pure part: records and batching)."""

    def __init__(self, fail: bool = False) -> None:
        self.lines: list[tuple[str, bytes]] = []
        self.fail = fail

    def write(self, lines: list[tuple[str, bytes]]) -> None:
        if self.fail:
            raise OSError("sink is down")
        self.lines.extend(lines)


def test_a_request_makes_an_inputs_and_a_predictions_record_with_one_correlation_id() -> None:
    kept = Kept()
    cap = Capture(CaptureSettings(service_name="svc"), sink=kept)
    cap.request("rid-1", b'{"data": [[1, 2]]}', b"[3]")
    cap.close()
    records = [json.loads(line) for _, line in kept.lines]
    assert [r["$aml_dc_designation"] for r in records] == ["inputs", "predictions"]
    assert {r["$aml_dc_correlation_id"] for r in records} == {"rid-1"}
    assert records[0]["data"] == '{"data": [[1, 2]]}'  # the body as the client sent it
    assert records[1]["data"] == [3]
    assert records[0]["$aml_service_name"] == "svc"
    assert "$aml_dc_scoring_timestamp" in records[0]


def test_a_large_payload_is_cut_and_marked() -> None:
    kept = Kept()
    cap = Capture(CaptureSettings(max_record_bytes=300), sink=kept)
    cap.request("r", b'{"data": "' + b"x" * 1000 + b'"}', b"not json", answer_is_json=False)
    cap.close()
    inputs, predictions = (json.loads(line) for _, line in kept.lines)
    assert inputs["truncated"] is True
    assert len(inputs["data"]) == 300
    assert predictions["data"] == "not json"  # text when it is not JSON
    assert "truncated" not in predictions


def test_answers_are_spliced_as_json_on_one_line_and_bodies_kept_as_text() -> None:
    kept = Kept()
    cap = Capture(CaptureSettings(), sink=kept)
    cap.request("r", b'{"data": [[1, 2]]}', b'{\n  "answer": [3,\r\n 4]\n}')
    cap.request("s", b'{"data": [1,', b'{"message": "bad"}')
    cap.close()
    lines = [line for _, line in kept.lines]
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    records = [json.loads(line) for line in lines]
    assert records[1]["data"] == {"answer": [3, 4]}
    assert records[2]["data"] == '{"data": [1,'  # not JSON: the same, its text


def test_the_queue_is_bounded_by_bytes() -> None:
    from kaci_runtime import capture as module

    class Stuck:
        def __init__(self) -> None:
            self.go = threading.Event()

        def write(self, lines: list[tuple[str, bytes]]) -> None:
            self.go.wait(10)

    stuck = Stuck()
    dropped: list[int] = []
    cap = Capture(CaptureSettings(), sink=stuck, on_drop=dropped.append)
    big = b"[" + b"1," * (1 << 20) + b"1]"  # 2 MiB
    for i in range(2 + module.QUEUE_BYTES // len(big) + 5):
        cap.request(f"r{i}", big, b"[1]")
    assert sum(dropped) >= 2 * 4  # the requests beyond the byte budget, two records each
    assert cap.queued_bytes <= module.QUEUE_BYTES
    stuck.go.set()
    cap.close()


def test_a_failing_sink_loses_records_counted_never_the_request() -> None:
    dropped: list[int] = []
    cap = Capture(CaptureSettings(), sink=Kept(fail=True), on_drop=dropped.append)
    cap.request("r", b"[1]", b"[2]")
    cap.close()
    assert sum(dropped) == 2
    assert cap.failed_batches == 1


def test_sampling_takes_both_records_of_a_request_or_neither() -> None:
    kept = Kept()
    cap = Capture(CaptureSettings(sample_rate=0.5), sink=kept)
    for i in range(400):
        cap.request(f"r{i}", b"[1]", b"[2]")
    cap.close()
    ids = [json.loads(line)["$aml_dc_correlation_id"] for _, line in kept.lines]
    assert all(ids.count(i) == 2 for i in set(ids))
    assert 100 < len(set(ids)) < 300  # about half of 400
    nothing = Kept()
    none = Capture(CaptureSettings(sample_rate=0.0), sink=nothing)
    none.request("r", b"[1]", b"[2]")
    none.close()
    assert nothing.lines == []


# -- the real server -------------------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], LocalRuntime]]:
    started: list[LocalRuntime] = []

    def start(env: dict[str, str]) -> LocalRuntime:
        script = tmp_path / "score.py"
        script.write_text(textwrap.dedent(SCRIPT))
        rt = LocalRuntime(
            script,
            env={"SERVICE_NAME": "mnist-svc", "KACI_MODEL_DATA_CAPTURE": "true", **env},
            cwd=tmp_path,
        )
        started.append(rt)
        rt.start()
        rt.wait_ready()
        return rt

    yield start
    for rt in started:
        rt.stop()


def score(rt: LocalRuntime, rows: list[list[int]], rid: str) -> Any:
    status, headers, body = rt.request(
        "POST", "/score", json.dumps({"data": rows}), {"x-request-id": rid}
    )
    assert status == 200, body
    assert headers["x-request-id"] == rid
    return json.loads(body)


def eventually(read: Callable[[], list[dict[str, Any]]], n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        got = read()
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_the_server_captures_to_a_folder_in_azures_partitioning(
    runtime: Callable[[dict[str, str]], LocalRuntime], tmp_path: Path
) -> None:
    data = tmp_path / "model-data"
    rt = runtime({"KACI_MODEL_DATA_DIR": str(data)})
    assert score(rt, [[1, 2], [3, 4]], "req-a") == [3, 7]
    assert score(rt, [[5, 6]], "req-b") == [11]

    def records() -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for f in sorted(data.rglob("*.jsonl"))
            for line in f.read_text().splitlines()
        ]

    got = eventually(records, 7)  # 2 x (inputs + predictions) + 3 signals rows
    by = {(r["$aml_dc_designation"], r.get("$aml_dc_correlation_id")): r for r in got}
    assert json.loads(by[("inputs", "req-a")]["data"]) == {"data": [[1, 2], [3, 4]]}
    assert by[("predictions", "req-a")]["data"] == [3, 7]
    assert by[("predictions", "req-b")]["data"] == [11]
    signals = [r for r in got if r["$aml_dc_designation"] == "signals"]
    assert [(r["a"], r["b"]) for r in signals] == [(1, 2), (3, 4), (5, 6)]
    folders = {f.relative_to(data).parts[:2] for f in data.rglob("*.jsonl")}
    assert folders == {
        ("mnist-svc", "inputs"),
        ("mnist-svc", "predictions"),
        ("mnist-svc", "signals"),
    }


class _Sink(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        assert self.headers["Content-Type"] == "application/x-ndjson"
        _Sink.received.append(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_server_posts_batches_to_an_http_sink(
    runtime: Callable[[dict[str, str]], LocalRuntime],
) -> None:
    _Sink.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ingest"
        rt = runtime({"KACI_MODEL_DATA_URL": url, "KACI_MODEL_DATA_MAX_RECORD_BYTES": "256"})
        for i in range(5):
            score(rt, [[i, i]], f"h{i}")
        score(rt, [[1] * 200], "big")

        def records() -> list[dict[str, Any]]:
            return [json.loads(line) for body in _Sink.received for line in body.splitlines()]

        # Six requests, each an inputs and a predictions record, and score.py's own
        # collector's "signals" record.
        got = eventually(records, 6 * 3)
        designations = [r["$aml_dc_designation"] for r in got]
        assert sorted(designations) == ["inputs"] * 6 + ["predictions"] * 6 + ["signals"] * 6
        inputs = {r["$aml_dc_correlation_id"] for r in got if r["$aml_dc_designation"] == "inputs"}
        assert inputs == {"h0", "h1", "h2", "h3", "h4", "big"}
        big = next(
            r
            for r in got
            if r.get("$aml_dc_correlation_id") == "big" and r["$aml_dc_designation"] == "inputs"
        )
        assert big["truncated"] is True
        assert len(_Sink.received) < len(got)  # batched, not a POST per record
    finally:
        server.shutdown()


def test_stdout_is_the_default_sink(runtime: Callable[[dict[str, str]], LocalRuntime]) -> None:
    rt = runtime({})
    score(rt, [[2, 2]], "out-1")
    rt.wait_log('"$aml_dc_correlation_id":"out-1"', count=2)
    lines = [ln for ln in rt.log().splitlines() if '"out-1"' in ln]
    assert {json.loads(ln)["$aml_dc_designation"] for ln in lines} == {"inputs", "predictions"}


def test_no_capture_when_not_asked(tmp_path: Path) -> None:
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCRIPT))
    data = tmp_path / "data"
    with LocalRuntime(script, env={"KACI_MODEL_DATA_DIR": str(data)}, cwd=tmp_path) as rt:
        rt.wait_ready()
        assert capture.active() is None
        score(rt, [[1, 1]], "n1")
        time.sleep(1.0)
    # Only score.py's own collector wrote (its old behaviour: its own folder layout).
    assert not any("inputs" in f.parts for f in data.rglob("*.jsonl"))
