"""azmlinfsrv compatibility the differential test cannot show (kaci-only behaviour, or
wire details), against the real kaci-runtime process on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import textwrap
import threading
from pathlib import Path

from kaci_runtime.testing import LocalRuntime


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def read_all(port: int, data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes; read until the server closes or `timeout` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except TimeoutError:
            pass
        return got


def test_plain_path_never_loads_werkzeug_and_rawhttp_does(tmp_path: Path) -> None:
    plain = write(
        tmp_path,
        "plain.py",
        """
        import sys

        def init():
            pass

        def run(raw_data):
            return {"werkzeug": "werkzeug" in sys.modules}
        """,
    )
    raw = write(
        tmp_path,
        "raw.py",
        """
        import sys
        from azureml.contrib.services.aml_request import rawhttp

        def init():
            pass

        @rawhttp
        def run(request):
            return {"werkzeug": "werkzeug" in sys.modules, "form": request.form.to_dict()}
        """,
    )
    with LocalRuntime(plain, cwd=tmp_path) as rt:
        assert json.loads(rt.request("POST", "/score", "x")[2]) == {"werkzeug": False}
    with LocalRuntime(raw, cwd=tmp_path) as rt:
        _, _, body = rt.request(
            "POST", "/score", "a=1", {"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert json.loads(body) == {"werkzeug": True, "form": {"a": "1"}}


STREAM_SCRIPT = """
from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

def parts():
    yield "one,"
    yield "two"

def broken():
    yield b"start"
    raise RuntimeError("the generator broke")

@rawhttp
def run(request):
    if request.args.get("broken"):
        return AMLResponse(broken(), 200)
    return AMLResponse(parts(), 200, {"Content-Type": "text/csv"})
"""


def test_streamed_body_is_chunked_and_keeps_the_connection(tmp_path: Path) -> None:
    script = write(tmp_path, "score.py", STREAM_SCRIPT)
    with LocalRuntime(script, cwd=tmp_path) as rt:
        one = b"GET /score HTTP/1.1\r\nHost: x\r\n\r\n"
        two = b"GET /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        got = read_all(rt.port, one + two)
        assert got.count(b"HTTP/1.1 200 OK") == 2
        first = got.split(b"HTTP/1.1 200 OK")[1]
        assert b"transfer-encoding: chunked" in first.lower()
        assert b"content-length" not in first.lower()
        assert b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n" in first
        # HTTP/1.0 has no chunks: the bytes as they come, then the connection closes.
        old = read_all(rt.port, b"GET /score HTTP/1.0\r\n\r\n")
        assert old.endswith(b"\r\n\r\none,two")
        assert b"connection: close" in old.lower()
        # A body that fails midway: the connection is cut before the last chunk.
        cut = read_all(rt.port, b"GET /score?broken=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"5\r\nstart\r\n" in cut
        assert not cut.endswith(b"0\r\n\r\n")
        assert "the generator broke" in rt.log()
        assert rt.request("GET", "/score")[0] == 200  # the server goes on


def test_pipelined_requests_held_during_init_keep_their_order(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = write(
        tmp_path,
        "score.py",
        f"""
        import os, time

        def init():
            while not os.path.exists({str(gate)!r}):
                time.sleep(0.02)

        def run(raw_data):
            return raw_data
        """,
    )
    rt = LocalRuntime(script, cwd=tmp_path).start()
    try:
        rt.wait_listening()
        requests = (
            b"".join(
                b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(w), w)
                for w in (b"first", b"second")
            )
            + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        answers: list[bytes] = []
        reader = threading.Thread(target=lambda: answers.append(read_all(rt.port, requests)))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()
        gate.write_text("go")
        reader.join(30)
        got = answers[0]
        assert got.count(b"HTTP/1.1 200 OK") == 3
        assert got.index(b'"first"') < got.index(b'"second"') < got.index(b"Healthy")
    finally:
        rt.stop()


def test_health_port_serves_the_same_routes(tmp_path: Path) -> None:
    script = write(tmp_path, "score.py", "def init():\n    pass\n\ndef run(d):\n    return d\n")
    env = {"SEPERATE_HEALTH_ENDPOINT": "true"}
    with LocalRuntime(script, cwd=tmp_path, env=env, args=["--health_port", "0"]) as rt:
        match = re.search(r"health port  : http://127\.0\.0\.1:(\d+)/", rt.log())
        assert match, rt.log()
        health = int(match.group(1))
        assert health != rt.port
        got = read_all(health, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 200 OK")
        assert got.endswith(b"Healthy")


def test_server_version_header_can_be_turned_off(tmp_path: Path) -> None:
    script = write(tmp_path, "score.py", "def init():\n    pass\n\ndef run(d):\n    return d\n")
    with LocalRuntime(script, cwd=tmp_path) as rt:
        assert rt.request("GET", "/")[1]["x-ms-server-version"].startswith("kaci-runtime/")
    env = {"SERVER_VERSION_LOG_RESPONSE_ENABLED": "false"}
    with LocalRuntime(script, cwd=tmp_path, env=env) as rt:
        assert "x-ms-server-version" not in rt.request("GET", "/")[1]


def test_old_sklearn_joblib_import_and_model_data_collection(tmp_path: Path) -> None:
    import joblib

    joblib.dump({"weights": [1, 2]}, tmp_path / "model.pkl")
    out = tmp_path / "modeldata"
    script = write(
        tmp_path,
        "score.py",
        f"""
        import json
        from sklearn.externals import joblib
        from azureml.monitoring import ModelDataCollector

        def init():
            global model, inputs_dc, prediction_dc
            model = joblib.load({str(tmp_path / "model.pkl")!r})
            inputs_dc = ModelDataCollector("m", designation="inputs", feature_names=["a", "b"])
            prediction_dc = ModelDataCollector("m", designation="predictions",
                                               feature_names=["y"])

        def run(raw_data):
            row = json.loads(raw_data)["data"]
            correlations = inputs_dc.collect(row)
            y = sum(w * x for w, x in zip(model["weights"], row))
            prediction_dc.collect(prediction_dc.add_correlations([y], correlations))
            return y
        """,
    )
    env = {"KACI_MODEL_DATA_DIR": str(out), "SERVICE_NAME": "svc"}
    with LocalRuntime(script, cwd=tmp_path, env=env) as rt:
        for _ in range(2):
            status, _, body = rt.request("POST", "/score", '{"data": [3, 4]}')
            assert (status, body) == (200, b"11")
        log = rt.log()
    assert log.count("which scikit-learn removed in 0.23") == 1
    inputs = next(out.rglob("inputs.jsonl")).read_text().splitlines()
    predictions = next(out.rglob("predictions.jsonl")).read_text().splitlines()
    assert len(inputs) == len(predictions) == 2
    first_in, first_pred = json.loads(inputs[0]), json.loads(predictions[0])
    assert (first_in["a"], first_in["b"], first_pred["y"]) == (3, 4, 11)
    assert first_in["$aml_dc_correlation_id"] == first_pred["$aml_dc_correlation_id"]
    assert first_in["$aml_service_name"] == "svc"


def test_source_directory_is_on_the_path(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    write(tmp_path / "code", "helper.py", "VALUE = 'from the source dir'\n")
    script = write(
        tmp_path,
        "score.py",
        "import helper\n\ndef init():\n    pass\n\ndef run(d):\n    return helper.VALUE\n",
    )
    env = {"AZUREML_SOURCE_DIRECTORY": "code", "AML_APP_ROOT": str(tmp_path)}
    with LocalRuntime(script, cwd=tmp_path, env=env) as rt:
        assert rt.request("POST", "/score", "x")[2] == b'"from the source dir"'


def test_sigterm_during_init_answers_held_requests_503(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "score.py",
        """
        import time

        def init():
            time.sleep(60)

        def run(raw_data):
            return raw_data
        """,
    )
    rt = LocalRuntime(script, cwd=tmp_path).start()
    try:
        rt.wait_listening()
        answers: list[int] = []
        waiting = threading.Thread(
            target=lambda: answers.append(rt.request("POST", "/score", "x", timeout=30)[0])
        )
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()
        rt.stop()
        waiting.join(30)
        assert answers == [503]
        assert rt.proc is not None
        assert rt.proc.returncode == 0
    finally:
        rt.stop()


def test_request_headers_with_underscores_are_dropped(tmp_path: Path) -> None:
    """gunicorn's rule (azmlinfsrv's server): X_Forwarded_For must not pass for X-Forwarded-For."""
    script = write(
        tmp_path,
        "score.py",
        "def init():\n    pass\n\ndef run(data, request_headers):\n    return request_headers\n",
    )
    with LocalRuntime(script, cwd=tmp_path) as rt:
        _, _, body = rt.request("POST", "/score", "x", {"X_Under": "1", "X-Dash": "2"})
    headers = json.loads(body)
    assert headers["X-Dash"] == "2"
    assert "X-Under" not in headers
    assert "X_Under" not in headers
