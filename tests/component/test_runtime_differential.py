"""kaci-runtime against azureml-inference-server-http 1.5.1, answer by answer.

Both servers run on 127.0.0.1 (free ports) with the same score.py
(tests/component/runtime_corpus/<case>/) and the same settings; each request of
the case's table goes to both, and the answers must agree on the status, the
body (as JSON when it is JSON) and the key headers. Where kaci answers otherwise
on purpose, the request names the deliberate difference (documented in
scoring-runtime/README.md), and the test checks that the difference is exactly that.

The reference server is installed from PyPI into a venv of its own (cached under
/var/cache/kaci, or KACI_AZMLINFSRV_VENV), with the same numpy, pandas and
inference-schema as kaci's venv. If PyPI cannot be reached, the test fails and says so.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REFERENCE = "azureml-inference-server-http==1.5.1"
CORPUS = Path(__file__).resolve().parent / "runtime_corpus"
CACHE = Path("/var/cache/kaci")
# Servers started ahead of the test that needs them (each reference server takes seconds).
PREFETCH = 2
START_DEADLINE_S = 180.0


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """This module needs no Docker engine: the tier's autouse engine fixture, overridden."""
    return "unused: the differential test runs two local processes"


# -- the reference server's venv ---------------------------------------------------------------


def _pins() -> list[str]:
    """The reference and the libraries whose behaviour shows in answers, at kaci's versions."""
    pins = [REFERENCE]
    for name in ("numpy", "pandas", "inference-schema"):
        pins.append(f"{name}=={importlib.metadata.version(name)}")
    return pins


def _venv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("KACI_AZMLINFSRV_VENV")
    if given:
        return Path(given)
    with contextlib.suppress(OSError):
        CACHE.mkdir(parents=True, exist_ok=True)
    if CACHE.is_dir() and os.access(CACHE, os.W_OK):
        return CACHE / "azmlinfsrv-1.5.1"
    return tmp_path_factory.getbasetemp() / "azmlinfsrv-1.5.1"


@pytest.fixture(scope="session")
def reference_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference's `azmlinfsrv`, installed (once per pin set) into its own venv."""
    root = _venv_root(tmp_path_factory)
    marker = root / ".installed"
    pins = _pins()
    wanted = "\n".join(pins) + "\n"
    if marker.is_file() and marker.read_text() == wanted and (root / "bin/azmlinfsrv").exists():
        return root / "bin" / "azmlinfsrv"
    building = root.with_name(root.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(building)],
        [str(building / "bin" / "python"), "-m", "pip", "install", "-q", *pins],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            pytest.fail(
                f"cannot install the reference server ({' '.join(pins)}) from PyPI into "
                f"{building}: `{' '.join(cmd[:4])} ...` exited {proc.returncode}:\n{tail}",
                pytrace=False,
            )
    (building / ".installed").write_text(wanted)
    # venv scripts name their interpreter by absolute path: fix them up for the final place.
    for script in (building / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            with contextlib.suppress(UnicodeDecodeError):
                text = script.read_text()
                if str(building) in text:
                    script.write_text(text.replace(str(building), str(root)))
    cfg = building / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace(str(building), str(root)))
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    return root / "bin" / "azmlinfsrv"


# -- the corpus: score.py folders, settings and requests -----------------------------------------


@dataclass(frozen=True)
class Req:
    name: str
    method: str = "POST"
    path: str = "/score"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A documented deliberate difference (DELIBERATE) this answer shows, if any.
    deliberate: str | None = None
    health_port: bool = False
    # Send the body with Transfer-Encoding: chunked (in two pieces) instead of Content-Length.
    chunked: bool = False
    # Headers sent after `headers`, repeats allowed.
    more_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    requests: tuple[Req, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ("--entry_script", "score.py")
    # False: send the requests as soon as the port accepts (init() still running).
    wait_ready: bool = True
    # The exit code both servers must stop with (no requests then).
    expect_exit: int | None = None
    health_port: bool = False
    # The test's id, when one folder serves in two cases.
    id: str = ""

    @property
    def key(self) -> str:
        return self.id or self.name


def post(name: str, body: str | bytes, **kw: object) -> Req:
    data = body.encode() if isinstance(body, str) else body
    return Req(name, "POST", "/score", data, **kw)  # type: ignore[arg-type]


def post_json(name: str, value: object, **kw: object) -> Req:
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}  # type: ignore[dict-item]
    return Req(name, "POST", "/score", json.dumps(value).encode(), headers, **kw)  # type: ignore[arg-type]


def get(name: str, path: str, **kw: object) -> Req:
    return Req(name, "GET", path, **kw)  # type: ignore[arg-type]


def multipart(fields: list[tuple[str, str, bytes, str | None]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request: (name, filename, data, type)."""
    boundary = "kaci-boundary-7d1f"
    parts = []
    for name, filename, data, ctype in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        parts.append(head.encode() + b"\r\n" + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


PNG = bytes(range(256)) * 40
FILES_BODY, FILES_TYPE = multipart(
    [
        ("image", "digit.png", PNG, "image/png"),
        ("image", "second.png", PNG[:100], "image/png"),
        ("note", "", b"a handwritten 7", None),
        ("extra", "data.csv", b"a,b\n1,2\n", "text/csv"),
    ]
)
NO_IMAGE_BODY, NO_IMAGE_TYPE = multipart([("other", "x.bin", b"xyz", "application/octet-stream")])
LONG = "a" * 101

PLAIN = (
    post("body as a string", '{"data": [[1, 2], [3, 4]]}'),
    post("not JSON", "hello there"),
    post("run() raises", "raise"),
    post("run() returns None", "none"),
    post("run() returns a str", "text"),
    post("empty body", b""),
    post("not UTF-8", b"\xff\xfe\x00bad"),
    get("GET: the query as JSON", "/score?a=1&b=[1,2]&c=word&c=other&d=null&e="),
    get("GET without a query", "/score"),
    Req("OPTIONS /score", "OPTIONS"),
    Req("HEAD /score", "HEAD", deliberate="allow-and-ids-on-404-405"),
    Req("PUT /score", "PUT", body=b"x", deliberate="allow-and-ids-on-404-405"),
    get("liveness", "/"),
    Req("OPTIONS /", "OPTIONS", "/"),
    Req("HEAD /", "HEAD", "/"),
    get("unknown path", "/nope", deliberate="allow-and-ids-on-404-405"),
    Req("POST /", "POST", "/", b"x", deliberate="allow-and-ids-on-404-405"),
    post("x-request-id echoed", "x", headers={"x-request-id": "my-id-1"}),
    post("lone x-ms-request-id", "x", headers={"x-ms-request-id": "legacy-9"}),
    post("lone x-ms-client-request-id", "x", headers={"x-ms-client-request-id": "client-7"}),
    post(
        "all three ids",
        "x",
        headers={"x-request-id": "r1", "x-ms-request-id": "l1", "x-ms-client-request-id": "c1"},
    ),
    post("over-long x-request-id", "x", headers={"x-request-id": LONG}),
    post("over-long x-ms-client-request-id", "x", headers={"x-ms-client-request-id": LONG}),
    post(
        "over-long x-ms-request-id, good x-request-id",
        "x",
        headers={"x-ms-request-id": LONG, "x-request-id": "kept-1"},
    ),
    get("over-long id on liveness", "/", headers={"x-request-id": LONG}),
    post("TraceId echoed", "x", headers={"TraceId": "office-trace-1"}),
    post("chunked body", '{"data": [1, 2, 3, 4]}', chunked=True),
    Req("percent-encoded path", "POST", "/%73core", b"x"),
    get("unicode query", "/score?name=%C3%A9t%C3%A9&emoji=%E2%98%83"),
    post(
        "charset in the content type", '"x"', headers={"Content-Type": "text/plain; charset=utf-8"}
    ),
    get("swagger (generic)", "/swagger.json"),
    get("swagger 3 (generic)", "/swagger.json?version=3"),
    get("swagger 3.1 (generic)", "/swagger.json?version=3.1"),
    get("swagger version 4", "/swagger.json?version=4"),
    Req("HEAD swagger", "HEAD", "/swagger.json"),
)

SCHEMA_ERRORS = (
    post("wrong content type", '{"data": [[1, 2, 3]]}', headers={"Content-Type": "text/plain"}),
    post("no content type", '{"data": [[1, 2, 3]]}'),
    post_json("not a JSON object", [1, 2, 3]),
    Req("bad JSON", "POST", "/score", b'{"data": [1,', {"Content-Type": "application/json"}),
    Req("empty JSON body", "POST", "/score", b"", {"Content-Type": "application/json"}),
    post_json("a parameter missing", {"other": 1}),
    post(
        "JSON with a charset",
        '{"data": [[1, 2, 3]]}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    ),
    Req(
        "chunked JSON",
        "POST",
        "/score",
        b'{"data": [[1, 2, 3]]}',
        {"Content-Type": "application/json"},
        chunked=True,
    ),
    post_json(
        "+json content type", {"data": [[1]]}, headers={"Content-Type": "application/vnd.x+json"}
    ),
    Req("OPTIONS /score", "OPTIONS"),
)

SWAGGERS = (
    get("swagger", "/swagger.json"),
    get("swagger 2.0", "/swagger.json?version=2.0"),
    get("swagger 3", "/swagger.json?version=3"),
    get("swagger 3.0", "/swagger.json?version=3.0"),
    get("swagger 3.1", "/swagger.json?version=3.1"),
    get("swagger version 9", "/swagger.json?version=9"),
)

CORS_REQUESTS = (
    post("matching origin", "x", headers={"Origin": "https://a.example"}),
    post("matching origin, other case", "x", headers={"Origin": "HTTPS://B.EXAMPLE"}),
    post("other origin", "x", headers={"Origin": "https://evil.example"}),
    post("no origin", "x"),
    Req(
        "preflight",
        "OPTIONS",
        headers={
            "Origin": "https://a.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-Custom, Content-Type",
        },
    ),
    Req(
        "preflight for DELETE",
        "OPTIONS",
        headers={"Origin": "https://a.example", "Access-Control-Request-Method": "DELETE"},
    ),
    get("liveness with origin", "/", headers={"Origin": "https://a.example"}),
    get("swagger with origin", "/swagger.json", headers={"Origin": "https://a.example"}),
    post(
        "private network",
        "x",
        headers={"Origin": "https://a.example", "Access-Control-Request-Private-Network": "true"},
    ),
    post(
        "error answer with origin",
        "x",
        headers={"Origin": "https://a.example", "x-request-id": LONG},
    ),
)

CASES = (
    Case("plain_echo", PLAIN),
    Case(
        "request_headers",
        (
            post(
                "headers dict",
                "payload",
                headers={"X-Custom-Thing": "42", "Content-Type": "text/plain"},
            ),
            get("GET with headers", "/score?q=1", headers={"X-Custom-Thing": "g"}),
            post("a header name with an underscore", "u", headers={"X_Under": "u"}),
            Req(
                "a repeated header",
                "POST",
                "/score",
                b"r",
                more_headers=(("X-Repeated", "one"), ("X-Repeated", "two")),
            ),
            post("no extra headers", "p"),
        ),
    ),
    Case(
        "std_schema",
        (
            post_json("data and scale", {"data": [[1, 2, 3], [4, 5, 6]], "scale": 0.5}),
            post_json("default scale", {"data": [[1.5, 2.5, 3.0]]}),
            post_json("extra keys ignored", {"data": [[1, 1, 1]], "junk": True}),
            get("GET: parameters from the query", "/score?data=[[1,2,3]]&scale=3"),
            get("GET: a parameter missing", "/score?scale=3"),
            *SCHEMA_ERRORS,
            *SWAGGERS,
        ),
    ),
    Case(
        "numpy_schema",
        (
            post_json("numpy array", {"data": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]}),
            post_json("integers", {"data": [[1, 2], [3, 4]]}),
            *SWAGGERS,
        ),
    ),
    Case(
        "pandas_schema",
        (
            post_json(
                "records",
                {
                    "data": [
                        {"age": 20, "income": 1.5, "city": "A"},
                        {"age": 40, "income": 2.5, "city": "B"},
                    ]
                },
            ),
            *SWAGGERS,
        ),
    ),
    Case(
        "multi_param_schema",
        (
            post_json(
                "all given",
                {"a": 3, "b": "hey", "flags": {"upper": True}},
                headers={"X-Custom": "c1"},
            ),
            post_json("defaults", {"a": 5}),
            post_json("a missing", {"b": "x"}),
            get("GET all", '/score?a=2&b=word&flags={"upper":false}'),
            *SWAGGERS,
        ),
    ),
    Case(
        "nested_schema",
        (
            post_json(
                "nested",
                {
                    "items": [{"id": 4, "tags": ["x"], "score": 0.1, "ok": False}],
                    "meta": {"source": "s", "version": 1},
                },
            ),
            *SWAGGERS,
        ),
    ),
    Case(
        "raw_basic",
        (
            post_json("JSON body", {"k": [1, 2]}, headers={"X-One": "1", "X-Two": "2"}),
            Req(
                "query and repeated headers",
                "POST",
                "/score?n=42&word=abc&n=7",
                b"plain body",
                {"Content-Type": "text/plain; charset=utf-8", "X-One": "a"},
            ),
            get("GET", "/score?n=5&flag", headers={"X-Empty": ""}),
            Req(
                "broken JSON: request.json raises in run()",
                "POST",
                "/score",
                b"{",
                {"Content-Type": "application/json"},
            ),
            Req("OPTIONS reaches run()", "OPTIONS", headers={"X-One": "opt"}),
            Req(
                "repeated headers in the request",
                "POST",
                "/score",
                b"x",
                more_headers=(("X-One", "a"), ("X-One", "b"), ("X-Two", "c")),
            ),
            Req("HEAD reaches run()", "HEAD", "/score?n=1"),
            Req("PUT", "PUT", body=b"x", deliberate="allow-and-ids-on-404-405"),
            *SWAGGERS[:1],
        ),
    ),
    Case(
        "raw_files",
        (
            Req(
                "multipart files and fields",
                "POST",
                "/score",
                FILES_BODY,
                {"Content-Type": FILES_TYPE},
            ),
            Req(
                "multipart without the file",
                "POST",
                "/score",
                NO_IMAGE_BODY,
                {"Content-Type": NO_IMAGE_TYPE},
            ),
            get("GET", "/score"),
        ),
    ),
    Case(
        "raw_form",
        (
            Req(
                "urlencoded form",
                "POST",
                "/score?color=query-blue",
                b"color=red&color=green&count=3&name=a+b%21",
                {"Content-Type": "application/x-www-form-urlencoded"},
            ),
            Req(
                "form with a bad count",
                "POST",
                "/score",
                b"count=many",
                {"Content-Type": "application/x-www-form-urlencoded"},
            ),
            get("GET", "/score?x=1&y=2"),
        ),
    ),
    Case(
        "raw_stream",
        (
            post("stream", PNG, headers={"Content-Type": "application/octet-stream"}),
            Req("data", "POST", "/score?mode=data", PNG[:1000], {"Content-Type": "image/png"}),
            Req(
                "text",
                "POST",
                "/score?mode=text",
                "h\u00e9llo".encode(),
                {"Content-Type": "text/plain"},
            ),
            Req("echo bytes", "POST", "/score?mode=echo", PNG[:500], {"Content-Type": "image/png"}),
            Req("stream, no content type", "POST", "/score", b"\x00\x01\x02\x03rest"),
            Req(
                "chunked upload", "POST", "/score", PNG, {"Content-Type": "image/png"}, chunked=True
            ),
        ),
    ),
    Case(
        "response_headers",
        (
            *(
                get(case, f"/score?case={case}")
                for case in (
                    "assign",
                    "mimetype",
                    "content_type_given",
                    "content_type_lower",
                    "comma",
                    "json",
                    "none",
                    "not_found",
                    "server_error",
                    "failed_flag",
                    "status_set",
                    "data_set",
                    "cookie",
                    "flag_header_given",
                    "flag_header_given_500",
                    "azure_test_headers",
                    "other",
                )
            ),
            get("ids set by run()", "/score?case=ids"),
            get(
                "ids set by run(), client ids sent",
                "/score?case=ids",
                headers={"x-request-id": "r9", "x-ms-client-request-id": "c9", "TraceId": "t9"},
            ),
        ),
    ),
    Case(
        "response_stream",
        (
            get("generator of lines", "/score?kind=lines&n=20"),
            get("generator of bytes", "/score?kind=bytes"),
            get("a list body", "/score?kind=list"),
            get("an empty iterator", "/score?kind=empty"),
            get("not streamed", "/score?kind=str"),
        ),
    ),
    Case(
        "errors",
        tuple(
            post_json(kind, {"kind": kind})
            for kind in (
                "value_error",
                "key_error",
                "unencodable",
                "set",
                "bytes",
                "nan",
                "big_int",
                "tuple",
                "nested",
                "fine",
            )
        ),
    ),
    Case(
        "timeouts",
        (
            post_json("in time", {"sleep": 0.01}),
            post_json("too slow", {"sleep": 3}),
            post_json("in time again", {"sleep": 0.01}),
            post_json(
                "run() catches Exception around the sleep",
                {"sleep": 3, "swallow": True},
                deliberate="timeout-not-swallowed",
            ),
        ),
        env={"SCORING_TIMEOUT_MS": "500"},
    ),
    Case(
        "source_dir",
        (post("import from the source dir", '{"values": [1, 2, 3]}'),),
        env={"AZUREML_SOURCE_DIRECTORY": "src"},
    ),
    Case(
        "driver_module",
        (
            post_json("the real run() is called", {"x": 21}),
            get("GET", "/score?x=2"),
            *SWAGGERS[:3],
        ),
    ),
    Case("swagger_files", SWAGGERS),
    # swagger.json is {} (counts as none), swagger2.json a JSON string, swagger3.json "".
    Case("swagger_odd", SWAGGERS),
    Case(
        "init_slow",
        (
            post("sent while init() runs", "early"),
            get("swagger while init() runs", "/swagger.json"),
            post("after", "late"),
        ),
        wait_ready=False,
    ),
    Case("init_fails", expect_exit=3),
    Case("bad_signature", expect_exit=3),
    Case("no_init", expect_exit=3),
    Case("import_error", expect_exit=3),
    Case(
        "raw_request_headers",
        (
            post("headers both ways", "x", headers={"X-Thing": "t1", "Content-Type": "text/plain"}),
            get("GET", "/score", headers={"X-Thing": "g"}),
        ),
    ),
    Case(
        "plain_aml_response",
        (
            post("AMLResponse from a plain run()", '{"respond": true}'),
            post("a JSON AMLResponse error", '{"fail": true}'),
            post("a dict", '{"k": 1}'),
        ),
    ),
    Case("cors", CORS_REQUESTS, env={"AML_CORS_ORIGINS": "https://a.example, https://b.example"}),
    Case("cors_wildcard", CORS_REQUESTS, env={"AML_CORS_ORIGINS": "*"}),
    Case(
        "server_version_off",
        (post("no server version", "x"), get("liveness", "/")),
        env={"SERVER_VERSION_LOG_RESPONSE_ENABLED": "false"},
    ),
    Case(
        "config_file",
        (
            post("fast", "quick"),
            post("slower than the file's timeout", "slow"),
            get("swagger from the file's names", "/swagger.json"),
        ),
        args=("--config_file", "settings.json"),
    ),
    Case(
        "health_port",
        (
            get("liveness on the health port", "/", health_port=True),
            post("score on the health port", "h", health_port=True),
            post("score on the main port", "m"),
        ),
        env={"SEPERATE_HEALTH_ENDPOINT": "true"},
        health_port=True,
    ),
    Case("env_vars", (post("the environment", "x"),)),
    Case(
        "env_vars",
        (post("the environment, with flags", "x"),),
        args=(
            "--entry_script",
            "score.py",
            "--model_dir",
            "./my/dir",
            "--appinsights_instrumentation_key",
            "my-super-duper-key",
            "--access_control_allow_origins",
            "www.microsoft.com, www.azure.com",
        ),
        id="env_vars_with_flags",
    ),
    Case(
        "system_exit",
        (post("fine", "ok"), post("sys.exit() in run()", "exit", deliberate="system-exit-json")),
    ),
)


# -- running a server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(case: Case, folder: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(PYTHONDONTWRITEBYTECODE="1", AML_APP_ROOT=str(folder), PYTHONUNBUFFERED="1")
    env.update(case.env)
    return env


class Server:
    def __init__(self, kind: str, case: Case, cmd: list[str], log_dir: Path) -> None:
        self.kind, self.case = kind, case
        self.folder = CORPUS / case.name
        self.port = free_port()
        self.health = free_port() if case.health_port else None
        cmd = [*cmd, *case.args, "--port", str(self.port)]
        if self.health is not None:
            cmd += ["--health_port", str(self.health)]
        self.log_path = log_dir / f"{case.key}.{kind}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.folder,
                env=_clean_env(case, self.folder),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self) -> None:
        end = time.monotonic() + START_DEADLINE_S
        # The port first (kaci binds before init(); gunicorn's master binds at once).
        while True:
            if self.proc.poll() is not None:
                if self.case.expect_exit is not None:
                    return
                raise AssertionError(f"{self.kind} exited {self.proc.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                break
            if time.monotonic() > end:
                raise AssertionError(f"{self.kind} never listened:\n{self.log()}")
            time.sleep(0.05)
        if not self.case.wait_ready or self.case.expect_exit is not None:
            return
        # Then ready: GET / answers once the reference's worker loaded the script; kaci's /ready.
        path = "/ready" if self.kind == "kaci" else "/"
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(self.port, Req("ready?", "GET", path), timeout=60).status == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > end:
                raise AssertionError(f"{self.kind} never got ready:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The whole session: gunicorn's master and its worker.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)


class Pool:
    """Both servers per case, started PREFETCH cases ahead of the test that needs them."""

    def __init__(self, reference: Path, log_dir: Path) -> None:
        self.reference = reference
        self.log_dir = log_dir
        self.started: dict[str, tuple[Server, Server]] = {}

    def _start(self, case: Case) -> None:
        if case.key in self.started:
            return
        ref = Server("reference", case, [str(self.reference)], self.log_dir)
        kaci = Server(
            "kaci",
            case,
            [sys.executable, "-m", "kaci_runtime", "--host", "127.0.0.1"],
            self.log_dir,
        )
        self.started[case.key] = (ref, kaci)

    def get(self, case: Case) -> tuple[Server, Server]:
        index = CASES.index(case)
        for ahead in CASES[index : index + 1 + PREFETCH]:
            if ahead.wait_ready and ahead.expect_exit is None:
                self._start(ahead)
        self._start(case)
        return self.started[case.key]

    def release(self, case: Case) -> None:
        for server in self.started.pop(case.key, ()):
            server.stop()

    def close(self) -> None:
        for name in list(self.started):
            for server in self.started.pop(name):
                server.stop()


@pytest.fixture(scope="module")
def pool(reference_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    p = Pool(reference_bin, tmp_path_factory.mktemp("differential-logs"))
    yield p
    p.close()


# -- requests and answers -----------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    error: str | None = None

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


def request(port: int, req: Req, timeout: float = 60) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(req.method, req.path, skip_accept_encoding=True)
        headers = dict(req.headers)
        body = req.body or b""
        if req.chunked:
            headers["Transfer-Encoding"] = "chunked"
            half = len(body) // 2
            pieces = [p for p in (body[:half], body[half:]) if p]
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        elif req.body is not None or req.method in ("POST", "PUT"):
            headers.setdefault("Content-Length", str(len(body)))
        for name, value in [*headers.items(), *req.more_headers]:
            conn.putheader(name, value)
        conn.endheaders(body or None)
        resp = conn.getresponse()
        body = resp.read()
        got: dict[str, list[str]] = {}
        for name, value in resp.getheaders():
            got.setdefault(name.lower(), []).append(value)
        return Answer(resp.status, got, body)
    except (OSError, http.client.HTTPException) as ex:
        return Answer(0, {}, b"", f"{type(ex).__name__}: {ex}")
    finally:
        conn.close()


# Compared by value (lower-case names); any other x-* header too, except the two below.
COMPARED = {
    "content-type",
    "x-ms-run-function-failed",
    "x-request-id",
    "x-ms-request-id",
    "x-ms-client-request-id",
    "traceid",
    "transfer-encoding",
    "vary",
    "set-cookie",
    "cache-control",
    "allow",
}
# Compared by presence only: the run() time, and the server's own name and version.
PRESENCE = {"x-ms-run-fn-exec-ms", "x-ms-server-version"}
GENERATED = "<generated id>"


def normalized(answer: Answer, req: Req) -> dict[str, object]:
    sent = set(req.headers.values())
    headers: dict[str, object] = {}
    for name, values in answer.headers.items():
        if name in PRESENCE:
            headers[name] = "<present>"
        elif name in COMPARED or name.startswith(("x-", "access-control-")):
            if name in ("x-request-id", "x-ms-request-id"):
                values = [v if v in sent else GENERATED for v in values]
            if name == "allow":
                # Flask lists a route's methods from a set: in no fixed order.
                values = [", ".join(sorted(m.strip() for m in v.split(","))) for v in values]
            headers[name] = values
    body: object = answer.body
    ctype = answer.header("content-type") or ""
    if ctype.startswith("application/json") and answer.body:
        try:
            # NaN and Infinity included: Python's json.dumps writes them, both servers use it.
            body = json.loads(answer.body)
        except ValueError:
            body = answer.body
    return {"status": answer.status, "headers": headers, "body": body, "error": answer.error}


def _same_generated_ids(answer: Answer) -> None:
    # A generated x-request-id is also the x-ms-request-id when the client sent no id.
    rid, ms = answer.header("x-request-id"), answer.header("x-ms-request-id")
    assert rid, answer.headers
    assert ms == rid, answer.headers


# -- the documented deliberate differences (scoring-runtime/README.md) ---------------------------


def _allow_and_ids(ref: Answer, kaci: Answer, req: Req) -> None:
    """404/405: kaci adds `Allow` (405) and, where the reference sends none (its app-level
    404/405), the request ids and the server version; all else as the reference."""
    assert ref.status in (404, 405)
    assert "x-request-id" in kaci.headers
    extra = {"allow"}
    if "x-request-id" not in ref.headers:
        extra |= {
            "x-request-id",
            "x-ms-request-id",
            "x-ms-client-request-id",
            "traceid",
            "x-ms-server-version",
        }
    if ref.status == 405:
        assert "allow" not in ref.headers
        assert kaci.header("allow")
    a, b = normalized(ref, req), normalized(kaci, req)
    b["headers"] = {k: v for k, v in b["headers"].items() if k not in extra}  # type: ignore[attr-defined]
    assert a == b


def _timeout_not_swallowed(ref: Answer, kaci: Answer, req: Req) -> None:
    """The reference's timeout is an Exception that run()'s `except Exception` catches."""
    assert (ref.status, json.loads(ref.body)) == (200, "caught the timeout")
    assert kaci.status == 500
    assert json.loads(kaci.body) == {"message": "Scoring timeout after 500 ms"}
    assert kaci.header("x-ms-run-function-failed") == "True"


def _system_exit_json(ref: Answer, kaci: Answer, req: Req) -> None:
    """sys.exit() in run(): the reference's gunicorn worker dies and answers its own HTML
    500 page (or nothing); kaci answers its JSON 500 for a failed run()."""
    assert ref.status in (0, 500), ref
    assert not (ref.header("content-type") or "").startswith("application/json")
    assert kaci.status == 500
    assert json.loads(kaci.body) == {
        "message": "An unexpected error occurred in scoring script. Check the logs for more info."
    }


DELIBERATE: dict[str, Callable[[Answer, Answer, Req], None]] = {
    "allow-and-ids-on-404-405": _allow_and_ids,
    "timeout-not-swallowed": _timeout_not_swallowed,
    "system-exit-json": _system_exit_json,
}


# -- the test -----------------------------------------------------------------------------------


def _exchange(server: Server, req: Req) -> Answer:
    port = server.health if req.health_port and server.health else server.port
    return request(port, req)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_kaci_answers_as_the_reference(case: Case, pool: Pool) -> None:
    ref, kaci = pool.get(case)
    try:
        # (For a case that does not wait for readiness, the requests go out while init() runs.)
        ref.wait()
        kaci.wait()
        if case.expect_exit is not None:
            codes = (ref.proc.wait(timeout=120), kaci.proc.wait(timeout=120))
            assert codes == (case.expect_exit, case.expect_exit), (ref.log(), kaci.log())
            return
        differences = []
        for req in case.requests:
            got_ref = _exchange(ref, req)
            got_kaci = _exchange(kaci, req)
            if req.deliberate is not None:
                DELIBERATE[req.deliberate](got_ref, got_kaci, req)
                continue
            a, b = normalized(got_ref, req), normalized(got_kaci, req)
            if GENERATED in str(a["headers"]) and not req.headers:
                _same_generated_ids(got_ref)
                _same_generated_ids(got_kaci)
            if a != b:
                differences.append(
                    f"{req.name} ({req.method} {req.path}):\n  reference: {a}\n  kaci:      {b}"
                )
        assert not differences, "\n".join(differences)
    finally:
        pool.release(case)


@pytest.mark.parametrize(
    "argv",
    [["--entry_script", "score.py", "--bogus_flag", "x"], ["--entry_script"], ["stray"]],
    ids=["unknown flag", "flag without its value", "stray argument"],
)
def test_bad_command_lines_fail_as_the_reference(argv: list[str], reference_bin: Path) -> None:
    """Exit code 1, argparse's error on stderr, then the help on stdout."""
    folder = CORPUS / "plain_echo"
    env = _clean_env(Case("plain_echo"), folder)
    runs = {}
    for kind, cmd in (
        ("reference", [str(reference_bin)]),
        ("kaci", [sys.executable, "-m", "kaci_runtime"]),
    ):
        proc = subprocess.run(
            [*cmd, *argv], cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )
        runs[kind] = proc
        assert proc.returncode == 1, (kind, proc.stdout, proc.stderr)
        assert "error:" in proc.stderr, (kind, proc.stderr)
        assert "--entry_script" in proc.stdout, (kind, proc.stdout)
    # The same complaint (argparse's own words), from either program.
    ref_error = runs["reference"].stderr.split("error:", 1)[1].strip()
    kaci_error = runs["kaci"].stderr.split("error:", 1)[1].strip()
    assert kaci_error == ref_error


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--entry_script", "score.py", "--port", "99999"], {}),
        (["--entry_script", "score.py", "--worker_count", "0"], {}),
        (["--entry_script", "score.py"], {"SCORING_TIMEOUT_MS": "soon"}),
    ],
    ids=["port out of range", "no workers", "bad SCORING_TIMEOUT_MS"],
)
def test_bad_settings_exit_as_the_reference(
    argv: list[str], env: dict[str, str], reference_bin: Path
) -> None:
    """A bad flag value exits with 1 (argparse), a bad environment value with 3."""
    folder = CORPUS / "plain_echo"
    full_env = {**_clean_env(Case("plain_echo"), folder), **env}
    if "--port" not in argv:
        # Should the bad setting go unnoticed, the server would not take a port in use.
        argv = [*argv, "--port", str(free_port())]
    codes = []
    for cmd in ([str(reference_bin)], [sys.executable, "-m", "kaci_runtime"]):
        proc = subprocess.run(
            [*cmd, *argv], cwd=folder, env=full_env, capture_output=True, text=True, timeout=120
        )
        codes.append(proc.returncode)
    assert codes[0] in (1, 3), codes
    assert codes[1] == codes[0], codes
