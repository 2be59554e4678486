"""Throw arbitrary requests at /score: never an unexpected 5xx, never a dead worker.

The score.py here accepts any text, so every 5xx would be the server's own
fault. Requests go over raw sockets too, so malformed HTTP is covered as well.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kaci_runtime.testing import LocalRuntime

SCRIPT = """
def init():
    pass

def run(data, request_headers):
    return {"length": len(data), "headers": len(request_headers)}
"""

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    # The same examples on every run, so CI cannot fail by chance; raise max_examples to explore.
    derandomize=True,
)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "score.py").write_text(SCRIPT)
    env = {"KACI_MAX_REQUEST_BYTES": "65536"}
    with LocalRuntime(folder / "score.py", env=env, cwd=folder) as rt:
        yield rt
        # After everything: the same process still answers, and exits cleanly.
        assert rt.alive()
        assert rt.request("GET", "/")[0] == 200


TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~",
    min_size=1,
    max_size=30,
)
RESERVED = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"}
HEADER_NAME = TOKEN.filter(lambda n: n.lower() not in RESERVED)
HEADER_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
).map(str.strip)
BODY = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.just(b"x" * 70000),
)


def expected_5xx(status: int, headers: dict[str, str]) -> bool:
    return status == 500 and headers.get("x-ms-run-function-failed") == "True"


@FUZZ
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "OPTIONS", "HEAD", "DELETE", "PATCH", "FOO"]),
    body=BODY,
    headers=st.dictionaries(HEADER_NAME, HEADER_VALUE, max_size=8),
    query=st.text(max_size=40).map(lambda q: q.encode("utf-8", "surrogatepass").hex()),
)
def test_arbitrary_requests_get_no_unexpected_5xx(
    runtime: LocalRuntime, method: str, body: bytes, headers: dict[str, str], query: str
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=60)
    try:
        conn.putrequest(method, f"/score?q={query}", skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value.encode("latin-1"))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
        assert resp.status < 500 or expected_5xx(resp.status, got), (resp.status, got)
    finally:
        conn.close()
    assert runtime.alive()


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_on_the_socket_never_kill_the_worker(
    runtime: LocalRuntime, data: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=60) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    for line in got.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 5"):
            raise AssertionError(got)
    assert runtime.alive()
    assert runtime.request("GET", "/")[0] == 200


@FUZZ
@given(st.binary(max_size=3000), st.lists(st.integers(1, 400), min_size=1, max_size=20))
def test_request_split_into_arbitrary_pieces_is_parsed_whole(
    runtime: LocalRuntime, body: bytes, sizes: list[int]
) -> None:
    request = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start, i = 0, 0
        while start < len(request):
            end = start + sizes[i % len(sizes)]
            sock.sendall(request[start:end])
            start, i = end, i + 1
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    status = int(got.split(b" ", 2)[1])
    assert status == (200 if _utf8(body) else 400), got


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
