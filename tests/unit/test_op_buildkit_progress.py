"""buildctl's rawjson progress -> the build log's lines, step and error: the docker
driver's words (Step n/m, Using cache), output lines joined across pieces, the
failing step named, harmless cache-import errors kept out of the verdict. The
lines are shaped as buildctl v0.34 writes them (seen on this machine)."""

from __future__ import annotations

import base64
import json

from kaci.edges.buildkit_progress import RawJsonProgress, dockerfile_step, step_line


def _v(digest: str, name: str, **kw: object) -> str:
    return json.dumps({"vertexes": [{"digest": digest, "name": name, **kw}]})


def _log(digest: str, data: bytes) -> str:
    entry = {"vertex": digest, "stream": 1, "data": base64.b64encode(data).decode()}
    return json.dumps({"logs": [entry]})


T0, T1 = "2026-12-01T23:54:34.43Z", "2026-12-01T23:54:35.43Z"


def test_step_names() -> None:
    assert step_line("[2/4] RUN echo hi") == "Step 2/4 : RUN echo hi"
    assert step_line("[ 3/12] COPY a /a") == "Step 3/12 : COPY a /a"
    assert step_line("[stage-0 8/8] COPY score.py /x") == "Step 8/8 : COPY score.py /x"
    assert step_line("[internal] load build definition from Dockerfile") is None
    assert step_line("exporting to image") == "exporting to image"


def test_a_build_reads_like_the_docker_drivers() -> None:
    p = RawJsonProgress()
    out: list[str] = []
    for line in [
        _v("a", "[internal] load build definition from Dockerfile", started=T0),
        _v("a", "[internal] load build definition from Dockerfile", started=T0, completed=T1),
        _v("b", "[1/3] FROM base@sha256:00", started=T0),
        _v("c", "[2/3] RUN sh /opt/kaci/install-requirements.sh"),
        _v("c", "[2/3] RUN sh /opt/kaci/install-requirements.sh", started=T0, cached=True),
        _v("c", "[2/3] RUN sh /opt/kaci/install-requirements.sh", completed=T1, cached=True),
        _v("d", "[3/3] COPY score.py /app/score.py", started=T0),
        _log("d", b"one line\nand half "),
        _log("d", b"a line\n"),
        json.dumps({"statuses": [{"id": "x", "vertex": "d", "current": 5}]}),
        _v("d", "[3/3] COPY score.py /app/score.py", started=T0, completed=T1),
        _v("e", "exporting to image", started=T0),
    ]:
        out += p.feed_line(line)
    assert out == [
        "Step 1/3 : FROM base@sha256:00",
        "Step 2/3 : RUN sh /opt/kaci/install-requirements.sh",
        " ---> Using cache",
        "Step 3/3 : COPY score.py /app/score.py",
        "one line",
        "and half a line",
        "exporting to image",
    ]
    assert p.log.step == "Step 3/3 : COPY score.py /app/score.py"
    assert p.log.error is None
    assert p.log.tail().splitlines()[-1] == "exporting to image"


def test_a_failing_step_is_named_with_its_error_and_output() -> None:
    p = RawJsonProgress()
    err = 'process "/bin/sh -c exit 3" did not complete successfully: exit code: 3'
    for line in [
        _v("b", "[2/4] RUN echo hello", started=T0),
        _v("c", "[4/4] RUN exit 3", started=T0),
        _log("c", b"about to fail\n"),
        _v("b", "[2/4] RUN echo hello", started=T0, completed=T1),
        _v("c", "[4/4] RUN exit 3", started=T0, completed=T1, error=err),
        "Dockerfile:4",
        "   4 | >>> RUN exit 3",
        f"error: failed to solve: {err}",
    ]:
        p.feed_line(line)
    assert p.failed_step == "Step 4/4 : RUN exit 3"
    assert p.log.error == err
    assert p.closing_error() == f"failed to solve: {err}"
    msg = p.log.explain()
    assert "Step 4/4 : RUN exit 3" in msg
    assert "exit code: 3" in msg
    assert "about to fail" in p.log.tail()


def test_a_missing_first_cache_is_a_warning_not_the_error() -> None:
    p = RawJsonProgress()
    name = "importing cache manifest from 127.0.0.1:5000/kaci/a:buildcache"
    out = p.feed_line(_v("x", name, started=T0, completed=T1, error="a:buildcache: not found"))
    assert out == ["WARNING: a:buildcache: not found"]
    assert p.log.error is None
    assert not p.errors


def test_an_error_outside_the_steps_is_kept() -> None:
    p = RawJsonProgress()
    name = "[internal] load metadata for 127.0.0.1:5999/kaci/python:3.11"
    refused = "dial tcp 127.0.0.1:5999: connect: connection refused"
    p.feed_line(_v("m", name, started=T0, completed=T1, error=refused))
    assert p.failed_step == ""
    assert p.errors == [refused]
    assert p.log.error == refused


def test_a_failure_by_dockerfile_line_is_named_as_its_step() -> None:
    dockerfile = (
        'FROM base:1\n# a comment\n\nRUN a \\\n  && b\nCOPY x /x\nENV A=1 \\\n    B=2\nCMD ["x"]\n'
    )
    assert dockerfile_step(dockerfile, 1) == "Step 1/5 : FROM base:1"
    assert dockerfile_step(dockerfile, 4) == "Step 2/5 : RUN a"
    assert dockerfile_step(dockerfile, 5) == "Step 2/5 : RUN a"
    assert dockerfile_step(dockerfile, 6) == "Step 3/5 : COPY x /x"
    assert dockerfile_step(dockerfile, 9) == 'Step 5/5 : CMD ["x"]'
    p = RawJsonProgress()
    for line in [
        "Dockerfile:1",
        "   1 | >>> FROM base:1",
        "error: failed to solve: base:1: not found",
    ]:
        p.feed_line(line)
    assert p.dockerfile_line() == 1
