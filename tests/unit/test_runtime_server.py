"""Contract tests of kaci-runtime's HTTP interface, against the real process on 127.0.0.1.

Each test module starts the runtime (`python -m kaci_runtime`, a free port) on a
small score.py and talks HTTP to it; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kaci_runtime.testing import LocalRuntime
from prometheus_client.parser import text_string_to_metric_families

ECHO_SCRIPT = """
import json, time

def init():
    global calls
    calls = 0

def run(raw_data):
    global calls
    calls += 1
    if raw_data.startswith("mark-and-sleep:"):
        _, mark, seconds = raw_data.split(":")
        open(mark, "w").close()
        time.sleep(float(seconds))
        return "slept"
    if raw_data.startswith("sleep:"):
        time.sleep(float(raw_data[6:]))
        return "slept"
    if raw_data == "raise":
        raise ValueError("boom from run()")
    if raw_data == "nan":
        return [float("nan"), 1.5]
    if raw_data == "numpy":
        import numpy
        return numpy.zeros(2)
    if raw_data == "none":
        return None
    if raw_data == "exit":
        raise SystemExit(1)
    if raw_data == "catch-all":
        try:
            time.sleep(30)
        except Exception:
            return "caught"
    return {"echo": raw_data, "calls": calls}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    folder = tmp_path_factory.mktemp("echo")
    script = write(folder, "score.py", ECHO_SCRIPT)
    env = {"SCORING_TIMEOUT_MS": "1500", "KACI_MAX_REQUEST_BYTES": "20000"}
    with LocalRuntime(script, env=env, cwd=folder) as rt:
        yield rt


def post(
    rt: LocalRuntime, body: bytes | str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    return rt.request("POST", "/score", body, headers)


# -- liveness, readiness, unknown routes -----------------------------------------------------


def test_liveness_says_healthy(echo: LocalRuntime) -> None:
    status, headers, body = echo.request("GET", "/")
    assert (status, body) == (200, b"Healthy")
    assert headers["content-type"].startswith("text/html")


def test_readiness_is_200_after_init(echo: LocalRuntime) -> None:
    status, _, body = echo.request("GET", "/ready")
    assert (status, body) == (200, b"Ready")


def test_head_on_liveness_has_no_body(echo: LocalRuntime) -> None:
    status, headers, body = echo.request("HEAD", "/")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == "7"


def test_unknown_route_is_404_with_a_message(echo: LocalRuntime) -> None:
    status, headers, body = echo.request("GET", "/nope")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert "not found" in json.loads(body)["message"]


def test_wrong_method_on_liveness_is_405(echo: LocalRuntime) -> None:
    status, headers, body = echo.request("POST", "/", b"x")
    assert status == 405
    assert json.loads(body) == {"message": "The method is not allowed for the requested URL."}
    assert "GET" in headers["allow"]


# -- /score ----------------------------------------------------------------------------------


def test_score_passes_the_body_as_a_string_and_encodes_the_result(echo: LocalRuntime) -> None:
    status, headers, body = post(echo, '{"data": [1, 2]}')
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["echo"] == '{"data": [1, 2]}'
    assert headers["x-ms-run-function-failed"] == "False"
    assert float(headers["x-ms-run-fn-exec-ms"]) >= 0


def test_request_id_is_echoed(echo: LocalRuntime) -> None:
    _, headers, _ = post(echo, "x", {"x-request-id": "my-id-1"})
    assert headers["x-request-id"] == "my-id-1"
    assert headers["x-ms-request-id"] == "my-id-1"


def test_request_id_is_generated_when_absent(echo: LocalRuntime) -> None:
    _, headers, _ = post(echo, "x")
    uuid.UUID(headers["x-request-id"])  # a real UUID
    assert headers["x-ms-request-id"] == headers["x-request-id"]


def test_client_request_id_is_echoed(echo: LocalRuntime) -> None:
    _, headers, _ = post(echo, "x", {"x-ms-client-request-id": "client-7"})
    assert headers["x-ms-client-request-id"] == "client-7"
    assert headers["x-ms-request-id"] == "client-7"


def test_over_long_request_id_is_431(echo: LocalRuntime) -> None:
    status, _, body = post(echo, "x", {"x-request-id": "a" * 101})
    assert status == 431
    assert "100 characters" in json.loads(body)["message"]


def test_get_score_passes_query_parameters_as_json(echo: LocalRuntime) -> None:
    status, _, body = echo.request("GET", "/score?a=1&b=[1,2]&c=word&c=other")
    assert status == 200
    assert json.loads(json.loads(body)["echo"]) == {"a": 1, "b": [1, 2], "c": ["word", "other"]}


def test_options_score_is_200(echo: LocalRuntime) -> None:
    status, _, body = echo.request("OPTIONS", "/score")
    assert (status, body) == (200, b"")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_on_score_are_405(echo: LocalRuntime, method: str) -> None:
    status, headers, body = echo.request(method, "/score", b"x")
    assert status == 405
    assert "message" in json.loads(body)
    assert "POST" in headers["allow"]


def test_run_raising_is_500_with_azures_message_and_no_traceback(echo: LocalRuntime) -> None:
    status, headers, body = post(echo, "raise")
    assert status == 500
    assert json.loads(body) == {
        "message": "An unexpected error occurred in scoring script. Check the logs for more info."
    }
    assert headers["x-ms-run-function-failed"] == "True"
    assert b"boom" not in body
    assert "ValueError: boom from run()" in echo.log()


def test_system_exit_in_run_is_a_500_not_a_dead_worker(echo: LocalRuntime) -> None:
    assert post(echo, "exit")[0] == 500
    assert post(echo, "after")[0] == 200


def test_nan_is_written_like_json_dumps_writes_it(echo: LocalRuntime) -> None:
    status, _, body = post(echo, "nan")
    assert status == 200
    assert body.replace(b" ", b"") == b"[NaN,1.5]"


def test_none_result_is_an_empty_object(echo: LocalRuntime) -> None:
    assert post(echo, "none")[2] == b"{}"


def test_result_json_cannot_encode_is_500(echo: LocalRuntime) -> None:
    status, headers, body = post(echo, "numpy")
    assert status == 500
    assert headers["x-ms-run-function-failed"] == "False"  # Azure: the server's encoding failed
    assert "unexpected internal error" in json.loads(body)["message"]


def test_body_that_is_not_utf8_is_400(echo: LocalRuntime) -> None:
    status, _, body = post(echo, b"\xff\xfe\xfa")
    assert status == 400
    assert json.loads(body)["message"].startswith("Input cannot be decoded as UTF-8")


def test_scoring_timeout_is_500_and_the_worker_lives_on(echo: LocalRuntime) -> None:
    status, headers, body = post(echo, "sleep:5")
    assert status == 500
    assert json.loads(body) == {"message": "Scoring timeout after 1500 ms"}
    assert headers["x-ms-run-function-failed"] == "True"
    assert post(echo, "next")[0] == 200


def test_timeout_is_not_swallowed_by_except_exception(echo: LocalRuntime) -> None:
    status, _, body = post(echo, "catch-all")
    assert status == 500
    assert "Scoring timeout" in json.loads(body)["message"]


def test_body_over_the_size_limit_is_413(echo: LocalRuntime) -> None:
    status, headers, body = post(echo, "x" * 20001)
    assert status == 413
    assert "20000 bytes" in json.loads(body)["message"]
    assert headers.get("connection") == "close"
    assert post(echo, "x" * 20000)[0] == 200


def test_chunked_body_over_the_size_limit_is_413(echo: LocalRuntime) -> None:
    conn = echo.connection()
    try:
        conn.request("POST", "/score", body=iter([b"y" * 15000, b"y" * 15000]))
        resp = conn.getresponse()
        assert resp.status == 413
    finally:
        conn.close()


def test_keep_alive_serves_many_requests_on_one_connection(echo: LocalRuntime) -> None:
    conn = echo.connection()
    try:
        for i in range(20):
            conn.request("POST", "/score", body=f"n{i}")
            resp = conn.getresponse()
            assert json.loads(resp.read())["echo"] == f"n{i}"
    finally:
        conn.close()


def raw_exchange(rt: LocalRuntime, data: bytes, until: bytes, count: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", rt.port), timeout=30) as sock:
        sock.sendall(data)
        got = b""
        while got.count(until) < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_pipelined_requests_are_answered_in_order(echo: LocalRuntime) -> None:
    one = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
    two = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
    got = raw_exchange(echo, one + two, b"HTTP/1.1 200", 2)
    assert got.index(b'"first"') < got.index(b'"second"')


def test_expect_100_continue_is_honoured(echo: LocalRuntime) -> None:
    with socket.create_connection(("127.0.0.1", echo.port), timeout=30) as sock:
        sock.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"data")
        assert b"200 OK" in sock.recv(65536)


def test_garbage_is_400_and_the_server_carries_on(echo: LocalRuntime) -> None:
    got = raw_exchange(echo, b"\x16\x03\x01 not http at all\r\n\r\n", b"\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400")
    assert echo.request("GET", "/")[0] == 200


def test_http10_without_keep_alive_closes(echo: LocalRuntime) -> None:
    got = raw_exchange(echo, b"GET / HTTP/1.0\r\n\r\n", b"Healthy")
    assert b"connection: close" in got.lower()


# -- /swagger.json ---------------------------------------------------------------------------


def test_swagger_is_version_2_by_default(echo: LocalRuntime) -> None:
    status, headers, body = echo.request("GET", "/swagger.json")
    doc = json.loads(body)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert doc["swagger"] == "2.0"
    assert "/score" in doc["paths"]
    assert doc["definitions"]["ServiceInput"] == {"type": "object", "example": {}}


@pytest.mark.parametrize(("version", "openapi"), [("3", "3.0.3"), ("3.1", "3.1.0")])
def test_swagger_version_3_on_request(echo: LocalRuntime, version: str, openapi: str) -> None:
    status, _, body = echo.request("GET", f"/swagger.json?version={version}")
    assert status == 200
    assert json.loads(body)["openapi"] == openapi


def test_swagger_unknown_version_is_404(echo: LocalRuntime) -> None:
    status, _, body = echo.request("GET", "/swagger.json?version=9")
    assert status == 404
    assert "is not valid" in json.loads(body)["message"]


# -- /metrics --------------------------------------------------------------------------------


def test_metrics_count_requests_latency_and_errors(echo: LocalRuntime) -> None:
    post(echo, "counted")
    post(echo, "raise")
    status, headers, body = echo.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    got = metric_samples(body)
    assert got[("kaci_requests_total", (("code", "200"), ("route", "/score")))] >= 1
    assert got[("kaci_errors_total", (("code", "500"), ("route", "/score")))] >= 1
    assert ("kaci_request_duration_seconds_bucket", (("le", "0.001"), ("route", "/score"))) in got
    assert got[("kaci_run_duration_seconds_count", ())] >= 1


def metric_samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# -- request_headers, @rawhttp, inference-schema -------------------------------------------


def test_run_with_request_headers(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "score.py",
        """
        def init():
            pass

        def run(data, request_headers):
            return {"data": data, "headers": request_headers}
        """,
    )
    with LocalRuntime(script, cwd=tmp_path) as rt:
        status, _, body = rt.request("POST", "/score", "hi", {"X-Custom-Thing": "42"})
    result = json.loads(body)
    assert status == 200
    assert result["data"] == "hi"
    assert result["headers"]["X-Custom-Thing"] == "42"
    assert result["headers"]["Content-Length"] == "2"


RAW_SCRIPT = """
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

@rawhttp
def run(request):
    if request.method == "GET":
        name = request.args.get("name", "nobody")
        return AMLResponse("hello " + name, 200, {"X-Greeting": "a, b"})
    if request.headers.get("content-type") == "application/json":
        return {"json": request.get_json()}
    if request.get_data() == b"fail":
        return AMLResponse("server side", 503)
    return AMLResponse(request.get_data()[::-1], 201, {"Content-Type": "application/octet-stream"})
"""


def test_rawhttp_gets_the_request_and_returns_a_response(tmp_path: Path) -> None:
    script = write(tmp_path, "score.py", RAW_SCRIPT)
    with LocalRuntime(script, cwd=tmp_path) as rt:
        status, headers, body = rt.request("GET", "/score?name=ada")
        assert (status, body) == (200, b"hello ada")
        raw = raw_exchange(rt, b"GET /score HTTP/1.1\r\nHost: x\r\n\r\n", b"hello")
        assert b"X-Greeting: a\r\n" in raw
        assert b"X-Greeting: b\r\n" in raw  # Azure splits a comma list into headers
        status, headers, body = rt.request("POST", "/score", b"abc")
        assert (status, body) == (201, b"cba")
        assert headers["content-type"] == "application/octet-stream"
        status, _, body = rt.request(
            "POST", "/score", b'{"k": [1]}', {"Content-Type": "application/json"}
        )
        assert json.loads(body) == {"json": {"k": [1]}}
        status, headers, _ = rt.request("POST", "/score", b"fail")
        assert status == 503
        assert headers["x-ms-run-function-failed"] == "True"
        assert "@rawhttp request" in rt.log()


SCHEMA_SCRIPT = """
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    pass

@input_schema("data", StandardPythonParameterType([[1.0, 2.0]]))
@input_schema("scale", StandardPythonParameterType(1.0))
@output_schema(StandardPythonParameterType([3.0]))
def run(data, scale=2.0):
    return [sum(row) * scale for row in data]
"""


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    folder = tmp_path_factory.mktemp("schema")
    script = write(folder, "score.py", SCHEMA_SCRIPT)
    with LocalRuntime(script, cwd=folder) as rt:
        yield rt


JSON_HEADERS = {"Content-Type": "application/json"}


def test_schema_decorated_run_gets_keyword_arguments(schema: LocalRuntime) -> None:
    status, _, body = schema.request("POST", "/score", '{"data": [[1, 2], [3, 4]]}', JSON_HEADERS)
    assert (status, json.loads(body)) == (200, [6.0, 14.0])
    body = schema.request("POST", "/score", '{"data": [[1, 2]], "scale": 10}', JSON_HEADERS)[2]
    assert json.loads(body) == [30.0]


def test_schema_needs_json_content_type_415(schema: LocalRuntime) -> None:
    status, _, body = schema.request(
        "POST", "/score", '{"data": [[1]]}', {"Content-Type": "text/plain"}
    )
    assert status == 415
    assert json.loads(body) == {"message": "Expects Content-Type to be application/json"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("", "POST body is empty. Expecting a JSON dictionary."),
        ("[1, 2]", "POST body should be a JSON dictionary."),
        ('{"scale": 1}', "A value is not provided for the 'data' parameter."),
    ],
)
def test_schema_bad_input_is_400(schema: LocalRuntime, payload: str, message: str) -> None:
    status, _, body = schema.request("POST", "/score", payload, JSON_HEADERS)
    assert (status, json.loads(body)) == (400, {"message": message})


def test_schema_bad_json_is_400(schema: LocalRuntime) -> None:
    status, _, body = schema.request("POST", "/score", "{nope", JSON_HEADERS)
    assert status == 400
    assert json.loads(body)["message"].startswith("POST body could not be decoded as JSON")


def test_schema_swagger_comes_from_the_decorators(schema: LocalRuntime) -> None:
    doc = json.loads(schema.request("GET", "/swagger.json")[2])
    service_input = doc["definitions"]["ServiceInput"]
    assert set(service_input["properties"]) == {"data", "scale"}
    assert doc["definitions"]["ServiceOutput"]["type"] == "array"


def test_swagger_file_next_to_the_script_wins(tmp_path: Path) -> None:
    script = write(tmp_path, "score.py", ECHO_SCRIPT)
    (tmp_path / "swagger.json").write_text('{"swagger": "2.0", "info": {"title": "mine"}}')
    with LocalRuntime(script, cwd=tmp_path) as rt:
        doc = json.loads(rt.request("GET", "/swagger.json")[2])
    assert doc["info"]["title"] == "mine"


# -- auth ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    folder = tmp_path_factory.mktemp("auth")
    script = write(folder, "score.py", ECHO_SCRIPT)
    env = {"KACI_AUTH_PRIMARY_KEY": "key-one", "KACI_AUTH_SECONDARY_KEY": "key-two"}
    with LocalRuntime(script, env=env, cwd=folder) as rt:
        yield rt


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "key-one", "Basic key-one"])
def test_auth_refuses_score_without_a_valid_key(
    authed: LocalRuntime, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    status, resp_headers, body = authed.request("POST", "/score", "x", headers)
    assert status == 401
    assert "Bearer" in json.loads(body)["message"]
    assert resp_headers["www-authenticate"] == "Bearer"
    assert authed.request("GET", "/swagger.json", headers=headers)[0] == 401


@pytest.mark.parametrize("key", ["key-one", "key-two"])
def test_auth_accepts_either_key(authed: LocalRuntime, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    assert authed.request("POST", "/score", "x", headers)[0] == 200
    assert authed.request("GET", "/swagger.json", headers=headers)[0] == 200


@pytest.mark.parametrize("path", ["/", "/ready", "/metrics"])
def test_auth_leaves_probes_open(authed: LocalRuntime, path: str) -> None:
    assert authed.request("GET", path)[0] == 200


# -- start-up failures, shutdown, workers ----------------------------------------------------


def test_init_failure_exits_non_zero_with_the_reason_last(tmp_path: Path) -> None:
    models = tmp_path / "azureml-models" / "m" / "1"
    models.mkdir(parents=True)
    (models / "weights.bin").write_bytes(b"0")
    script = write(
        tmp_path,
        "score.py",
        """
        def init():
            open("/nonexistent/model.pkl")

        def run(raw_data):
            return raw_data
        """,
    )
    rt = LocalRuntime(script, model_dir=models, cwd=tmp_path).start()
    code = rt.wait_exit()
    log = rt.log()
    assert code == 3
    assert "Traceback" in log
    assert "weights.bin" in log  # the model folder listing
    last = log.strip().splitlines()[-1]
    assert last.startswith("kaci-runtime: init() of ")
    assert "FileNotFoundError" in last
    assert "/nonexistent/model.pkl" in last


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def run(x):\n    return x\n", "does not have a init() function"),
        ("def init():\n    pass\n", "does not have a run() function"),
        ("def init():\n    pass\ndef run(*args):\n    pass\n", "cannot accept positional-only"),
        ("import nonexistent_module_xyz\n", "nonexistent_module_xyz"),
        ("def init(:\n", "SyntaxError"),
    ],
)
def test_unusable_script_exits_non_zero(tmp_path: Path, source: str, reason: str) -> None:
    script = tmp_path / "score.py"
    script.write_text(source)
    rt = LocalRuntime(script, cwd=tmp_path).start()
    assert rt.wait_exit() == 3
    assert reason in rt.log().strip().splitlines()[-1]


def test_score_is_held_while_init_runs_and_answered_after(tmp_path: Path) -> None:
    """azmlinfsrv's worker takes no request before its app is loaded: /score waits for
    init() rather than failing; liveness and readiness answer at once."""
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
            return "ok " + raw_data
        """,
    )
    rt = LocalRuntime(script, cwd=tmp_path).start()
    try:
        rt.wait_listening()
        assert rt.request("GET", "/")[0] == 200
        assert rt.request("GET", "/ready")[0] == 503
        answers: list[tuple[int, bytes]] = []

        def score() -> None:
            status, _, body = rt.request("POST", "/score", "x", timeout=60)
            answers.append((status, body))

        waiting = threading.Thread(target=score)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive(), "the request was answered before init() finished"
        assert answers == []
        gate.write_text("go")
        waiting.join(30)
        assert answers == [(200, b'"ok x"')]
        rt.wait_ready()
    finally:
        rt.stop()


def test_held_requests_get_503_when_init_fails(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = write(
        tmp_path,
        "score.py",
        f"""
        import os, time

        def init():
            while not os.path.exists({str(gate)!r}):
                time.sleep(0.02)
            raise RuntimeError("no model today")

        def run(raw_data):
            return "never"
        """,
    )
    rt = LocalRuntime(script, cwd=tmp_path).start()
    try:
        rt.wait_listening()
        answers: list[tuple[int, bytes]] = []

        def score() -> None:
            status, _, body = rt.request("POST", "/score", "x", timeout=60)
            answers.append((status, body))

        waiting = threading.Thread(target=score)
        waiting.start()
        waiting.join(0.3)
        gate.write_text("go")
        waiting.join(30)
        assert answers
        assert answers[0][0] == 503
        assert rt.wait_exit() == 3
    finally:
        rt.stop()


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path: Path) -> None:
    script = write(tmp_path, "score.py", ECHO_SCRIPT)
    rt = LocalRuntime(script, cwd=tmp_path)
    rt.start()
    rt.wait_ready()
    result: dict[str, tuple[int, dict[str, str], bytes]] = {}

    mark = tmp_path / "in-run"

    def slow() -> None:
        result["response"] = rt.request("POST", "/score", f"mark-and-sleep:{mark}:1.0")

    idle = socket.create_connection(("127.0.0.1", rt.port), timeout=30)
    started = threading.Thread(target=slow)
    started.start()
    while not mark.exists():  # run() has the request
        started.join(0.01)
    assert rt.proc is not None
    rt.proc.send_signal(signal.SIGTERM)
    started.join(30)
    status, _, body = result["response"]
    assert status == 200
    assert json.loads(body) == "slept"
    assert rt.wait_exit() == 0
    assert idle.recv(10) == b""  # the idle keep-alive connection was closed
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", rt.port), timeout=5).close()


def test_two_workers_serve_and_stop(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "score.py",
        """
        import os

        def init():
            pass

        def run(raw_data):
            return os.getpid()
        """,
    )
    rt = LocalRuntime(script, cwd=tmp_path, args=["--worker_count", "2"])
    rt.start()
    try:
        rt.wait_ready()
        rt.wait_log("init() done", 2)  # each worker runs init() itself
        assert "worker 0 " in rt.log()
        assert "worker 1 " in rt.log()
        pid = json.loads(rt.request("POST", "/score", "x")[2])
        assert rt.proc is not None
        assert pid != rt.proc.pid  # a forked worker answered
        metrics = metric_samples(rt.request("GET", "/metrics")[2])
        assert metrics[("kaci_requests_total", (("code", "200"), ("route", "/score")))] >= 1
        # A worker that dies is replaced; the service keeps answering.
        os.kill(pid, signal.SIGKILL)
        rt.wait_log("starting a new one")
        rt.wait_log("init() done", 3)
        assert rt.request("POST", "/score", "x")[0] == 200
    finally:
        assert rt.stop() == 0


def test_two_workers_whose_init_fails_exit_non_zero(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "score.py",
        """
        def init():
            raise RuntimeError("no model here")

        def run(raw_data):
            return raw_data
        """,
    )
    rt = LocalRuntime(script, cwd=tmp_path, args=["--worker_count", "2"]).start()
    assert rt.wait_exit() == 3
    last = rt.log().strip().splitlines()[-1]
    assert last.startswith("kaci-runtime: init() of ")
    assert "RuntimeError: no model here" in last


def test_sigterm_exits_even_with_a_thread_the_script_left_running(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "score.py",
        """
        import threading, time

        def init():
            threading.Thread(target=lambda: time.sleep(3600)).start()  # not a daemon

        def run(raw_data):
            return 1
        """,
    )
    rt = LocalRuntime(script, cwd=tmp_path)
    rt.start()
    rt.wait_ready()
    assert rt.stop() == 0


def test_head_answers_never_carry_a_body_so_keep_alive_stays_in_step(echo: LocalRuntime) -> None:
    conn = echo.connection()
    try:
        for method, path in [("HEAD", "/score"), ("HEAD", "/nope"), ("HEAD", "/swagger.json")]:
            conn.request(method, path)
            resp = conn.getresponse()
            assert resp.read() == b""
            conn.request("POST", "/score", body="after-head")
            resp = conn.getresponse()
            assert json.loads(resp.read())["echo"] == "after-head"
    finally:
        conn.close()


def test_connection_accepted_during_shutdown_is_closed_after_its_answer(tmp_path: Path) -> None:
    script = write(tmp_path, "score.py", ECHO_SCRIPT)
    # A long grace period: only closing the late connection lets the process exit in time.
    rt = LocalRuntime(script, cwd=tmp_path, env={"KACI_GRACEFUL_TIMEOUT_S": "3600"})
    rt.start()
    rt.wait_ready()
    mark = tmp_path / "in-run"
    slow = threading.Thread(
        target=lambda: rt.request("POST", "/score", f"mark-and-sleep:{mark}:2.0")
    )
    slow.start()
    while not mark.exists():
        slow.join(0.01)
    assert rt.proc is not None
    rt.proc.send_signal(signal.SIGTERM)
    # The loop is busy in run(): this connection waits in the listen backlog meanwhile
    # (unless this thread was held up past the 2 s run(), when the port is closed).
    try:
        late = socket.create_connection(("127.0.0.1", rt.port), timeout=60)
    except ConnectionRefusedError:
        slow.join(30)
        assert rt.wait_exit() == 0
        return
    try:
        late.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlate")
        got = b""
        while chunk := late.recv(65536):
            got += chunk
        # Either it was served (and told the connection closes) or reset unserved.
        assert got == b"" or b"connection: close" in got
    except ConnectionResetError:
        pass
    finally:
        late.close()
    slow.join(30)
    assert rt.wait_exit() == 0


def test_keyword_only_run_gets_the_body(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "score.py",
        """
        def init():
            pass

        def run(*, raw_data):
            return raw_data.upper()
        """,
    )
    with LocalRuntime(script, cwd=tmp_path) as rt:
        status, _, body = rt.request("POST", "/score", "abc")
    assert (status, json.loads(body)) == (200, "ABC")
