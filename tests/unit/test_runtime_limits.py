"""AKS's front-end limits in kaci-runtime, against the real process on 127.0.0.1.

KACI_MAX_CONCURRENT_REQUESTS (replicaMaxConcurrentRequests), KACI_MAX_REQUEST_WAIT_MS
(maxRequestWaitTimeMs) and SCORING_TIMEOUT_MS (scoringTimeoutMs), with Azure's answers:
503 for a request that waited too long, 504 for a scoring timeout. The score.py counts
its own overlapping run() calls with marker files, so the count holds across workers.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kaci_runtime.config import ConfigError, load
from kaci_runtime.testing import LocalRuntime
from prometheus_client.parser import text_string_to_metric_families

SCRIPT = """
import json, os, time, uuid

ACTIVE = os.environ["TEST_ACTIVE_DIR"]
SEEN = os.environ["TEST_SEEN_FILE"]

def init():
    pass

def run(raw_data):
    if raw_data == "spin":
        while True:  # pure Python: the timeout's exception stops it
            pass
    mark = os.path.join(ACTIVE, uuid.uuid4().hex)
    open(mark, "w").close()
    try:
        # How many run() calls are inside run() right now, this one included.
        overlapping = len(os.listdir(ACTIVE))
        fd = os.open(SEEN, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, b"%d\\n" % overlapping)
        os.close(fd)
        if raw_data.startswith("sleep:"):
            time.sleep(float(raw_data[6:]))
        return {"echo": raw_data, "pid": os.getpid()}
    finally:
        os.remove(mark)
"""


class Served:
    def __init__(self, rt: LocalRuntime, active: Path, seen: Path) -> None:
        self.rt = rt
        self.active = active
        self.seen = seen

    def most_overlapping(self) -> int:
        return max(int(n) for n in self.seen.read_text().split())

    def running(self) -> int:
        return len(list(self.active.iterdir()))


def serve(folder: Path, env: dict[str, str], args: list[str] | None = None) -> LocalRuntime:
    script = folder / "score.py"
    script.write_text(textwrap.dedent(SCRIPT))
    (folder / "active").mkdir()
    environ = {
        "TEST_ACTIVE_DIR": str(folder / "active"),
        "TEST_SEEN_FILE": str(folder / "seen"),
        "SERVICE_NAME": "iris-aks",
        **env,
    }
    return LocalRuntime(script, env=environ, cwd=folder, args=args)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[LocalRuntime] = []

    def start(env: dict[str, str], args: list[str] | None = None) -> Served:
        folder = tmp_path / uuid.uuid4().hex[:8]
        folder.mkdir()
        rt = serve(folder, env, args)
        started.append(rt)
        rt.start()
        rt.wait_ready()
        return Served(rt, folder / "active", folder / "seen")

    yield start
    for rt in started:
        rt.stop()


def post(rt: LocalRuntime, body: str, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    return rt.request("POST", "/score", body, timeout=timeout)


def post_all(rt: LocalRuntime, bodies: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """Send the requests at once, each on its own connection; their answers in order."""
    answers: list[tuple[int, dict[str, str], bytes] | None] = [None] * len(bodies)

    def one(i: int) -> None:
        answers[i] = post(rt, bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(a is not None for a in answers), "a request got no answer"
    return [a for a in answers if a is not None]


def wait_until(what: Callable[[], bool], message: str, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while not what():
        if time.monotonic() > end:
            raise AssertionError(message)
        time.sleep(0.02)


def samples(rt: LocalRuntime) -> dict[str, float]:
    status, _, body = rt.request("GET", "/metrics")
    assert status == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if not sample.labels:
                out[sample.name] = sample.value
    return out


# -- settings --------------------------------------------------------------------------------


def test_unset_means_no_limits() -> None:
    config, _ = load([], {"AML_APP_ROOT": "/app"})
    assert config.max_concurrent_requests is None
    assert config.max_request_wait_ms is None
    assert not config.limited


def test_the_limits_are_read() -> None:
    environ = {
        "AML_APP_ROOT": "/app",
        "KACI_MAX_CONCURRENT_REQUESTS": "3",
        "KACI_MAX_REQUEST_WAIT_MS": "500",
    }
    config, _ = load([], environ)
    assert config.max_concurrent_requests == 3
    assert config.max_request_wait_ms == 500
    assert config.limited
    only_wait, _ = load([], {"AML_APP_ROOT": "/app", "KACI_MAX_REQUEST_WAIT_MS": "500"})
    assert only_wait.limited


@pytest.mark.parametrize("name", ["KACI_MAX_CONCURRENT_REQUESTS", "KACI_MAX_REQUEST_WAIT_MS"])
@pytest.mark.parametrize("value", ["0", "-1", "ten", "1.5"])
def test_bad_limits_are_refused(name: str, value: str) -> None:
    # AksWebservice refuses zero and below too ("must be greater than zero").
    with pytest.raises(ConfigError, match=name) as info:
        load([], {"AML_APP_ROOT": "/app", name: value})
    assert info.value.exit_code == 3


# -- the concurrency cap ---------------------------------------------------------------------


def test_one_at_a_time_holds(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1"})
    answers = post_all(served.rt, ["sleep:0.3"] * 4)
    assert [a[0] for a in answers] == [200] * 4
    assert served.most_overlapping() == 1


def test_the_cap_is_reached_and_not_passed(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "2"})
    answers = post_all(served.rt, ["sleep:0.6"] * 5)
    assert [a[0] for a in answers] == [200] * 5
    # Two at once (they run on runner threads, not one after another), never three.
    assert served.most_overlapping() == 2


def test_the_cap_is_per_container_across_workers(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1"}, ["--worker_count", "2"])
    answers = post_all(served.rt, ["sleep:0.3"] * 6)
    assert [a[0] for a in answers] == [200] * 6
    assert served.most_overlapping() == 1


# -- the wait limit: 503 -----------------------------------------------------------------------


def test_a_request_that_waits_too_long_is_503_while_run_goes_on(
    runtime: Callable[..., Served],
) -> None:
    served = runtime(
        {"KACI_MAX_CONCURRENT_REQUESTS": "1", "KACI_MAX_REQUEST_WAIT_MS": "300"},
    )
    first: list[tuple[int, dict[str, str], bytes]] = []
    slow = threading.Thread(target=lambda: first.append(post(served.rt, "sleep:3")))
    slow.start()
    wait_until(lambda: served.running() == 1, "the first run() never started")
    began = time.monotonic()
    status, headers, body = post(served.rt, "second")
    waited = time.monotonic() - began
    # Answered while the first run() still runs, and not before the wait limit.
    assert served.running() == 1
    assert waited >= 0.3
    assert status == 503
    assert json.loads(body) == {"message": "Too many requests for service iris-aks (overloaded)"}
    assert headers["x-ms-run-function-failed"] == "False"
    assert "x-ms-request-id" in headers
    slow.join(30)
    assert first
    assert first[0][0] == 200
    got = samples(served.rt)
    assert got["kaci_queue_timeouts_total"] == 1
    # The slot is free again: the next request is served.
    assert post(served.rt, "third")[0] == 200


def test_without_a_wait_limit_requests_wait_as_long_as_it_takes(
    runtime: Callable[..., Served],
) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1"})
    answers = post_all(served.rt, ["sleep:0.4", "sleep:0.4", "sleep:0.4"])
    assert [a[0] for a in answers] == [200] * 3
    assert samples(served.rt)["kaci_queue_timeouts_total"] == 0


# -- the scoring timeout: 504 -------------------------------------------------------------------


def test_a_scoring_timeout_is_504_with_azmlinfsrvs_message(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1", "SCORING_TIMEOUT_MS": "500"})
    began = time.monotonic()
    status, headers, body = post(served.rt, "sleep:3")
    assert time.monotonic() - began >= 0.5
    assert status == 504
    assert json.loads(body) == {"message": "Scoring timeout after 500 ms"}
    assert headers["x-ms-run-function-failed"] == "True"
    # Answered at the deadline, while run() (in time.sleep, a C call) is still in it.
    assert served.running() == 1
    assert samples(served.rt)["kaci_scoring_timeouts_total"] == 1


def test_a_run_that_never_returns_is_stopped(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1", "SCORING_TIMEOUT_MS": "300"})
    assert post(served.rt, "spin")[0] == 504
    # The only slot comes back only if the spinning run() was stopped.
    status, _, body = post(served.rt, "after")
    assert status == 200
    assert json.loads(body)["echo"] == "after"


def test_run_raising_is_500_as_without_limits(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1"})
    status, headers, body = post(served.rt, "sleep:not-a-number")
    assert status == 500
    assert json.loads(body) == {
        "message": "An unexpected error occurred in scoring script. Check the logs for more info."
    }
    assert headers["x-ms-run-function-failed"] == "True"
    assert post(served.rt, "next")[0] == 200


# -- the busy-replica gauge ----------------------------------------------------------------------


def test_in_flight_goes_up_under_load_and_back_to_zero(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1"})
    assert samples(served.rt)["kaci_requests_in_flight"] == 0
    load_threads = [threading.Thread(target=post, args=(served.rt, "sleep:1.5")) for _ in range(3)]
    for t in load_threads:
        t.start()
    # One running and two waiting: all three count.
    wait_until(
        lambda: samples(served.rt)["kaci_requests_in_flight"] == 3,
        "kaci_requests_in_flight never showed the 3 requests",
    )
    for t in load_threads:
        t.join(60)
    wait_until(
        lambda: samples(served.rt)["kaci_requests_in_flight"] == 0,
        "kaci_requests_in_flight did not come back to 0",
    )


def test_in_flight_is_summed_over_workers(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "2"}, ["--worker_count", "2"])
    load_threads = [threading.Thread(target=post, args=(served.rt, "sleep:2")) for _ in range(4)]
    for t in load_threads:
        t.start()
    wait_until(
        lambda: samples(served.rt)["kaci_requests_in_flight"] == 4,
        "kaci_requests_in_flight never summed the 4 requests of both workers",
    )
    for t in load_threads:
        t.join(60)
    wait_until(
        lambda: samples(served.rt)["kaci_requests_in_flight"] == 0,
        "kaci_requests_in_flight did not come back to 0",
    )


# -- HTTP stays HTTP ------------------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "2"})
    one = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nsleep:0.5"
    two = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
    with socket.create_connection(("127.0.0.1", served.rt.port), timeout=30) as sock:
        sock.sendall(one + two)
        got = b""
        while got.count(b"HTTP/1.1 200") < 2:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {got!r}"
            got += chunk
    assert got.index(b'"sleep:0.5"') < got.index(b'"second"')
    # One connection's requests are run one after the other, as HTTP/1.1 answers them.
    assert served.most_overlapping() == 1


def test_liveness_and_metrics_answer_while_run_is_busy(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1"})
    slow = threading.Thread(target=post, args=(served.rt, "sleep:2"))
    slow.start()
    wait_until(lambda: served.running() == 1, "run() never started")
    assert served.rt.request("GET", "/")[0] == 200
    assert served.rt.request("GET", "/ready")[0] == 200
    assert served.running() == 1
    slow.join(30)


def test_sigterm_lets_queued_requests_finish(runtime: Callable[..., Served]) -> None:
    served = runtime({"KACI_MAX_CONCURRENT_REQUESTS": "1"})
    answers: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        status = post(served.rt, "sleep:0.5")[0]
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    wait_until(
        lambda: samples(served.rt)["kaci_requests_in_flight"] == 2,
        "the second request never reached the queue",
    )
    served.rt.stop()
    for t in threads:
        t.join(30)
    assert answers == [200, 200]
