from __future__ import annotations

from kaci.edges.buildlog import BuildLog, explain_failure


def test_pip_missing_package_named_with_step() -> None:
    log = BuildLog()
    log.feed({"stream": "Step 1/9 : FROM base\n"})
    log.feed({"stream": "Step 5/9 : RUN python -m pip install -r /opt/kaci/requirements.txt\n"})
    log.feed(
        {
            "stream": "ERROR: Could not find a version that satisfies the requirement "
            "no-such-pkg-kaci (from versions: none)\n"
        }
    )
    log.feed({"stream": "ERROR: No matching distribution found for no-such-pkg-kaci\n"})
    log.feed(
        {"error": "The command '/bin/sh -c python -m pip install' returned a non-zero code: 1"}
    )
    msg = log.explain()
    assert "Step 5/9" in msg
    assert "no-such-pkg-kaci" in msg
    assert log.error is not None


def test_tail_is_bounded_and_image_id_found() -> None:
    log = BuildLog(keep=3)
    for i in range(10):
        log.feed({"stream": f"line {i}\n"})
    log.feed({"aux": {"ID": "sha256:abc"}})
    assert log.tail() == "line 7\nline 8\nline 9"
    assert log.image_id == "sha256:abc"


def test_other_failures() -> None:
    assert "pull" in explain_failure("Step 1/2 : FROM x", "manifest unknown", "")
    assert explain_failure("", "boom", "") == "build failed: boom"
    assert "conflicting" in explain_failure("S", "e", "ResolutionImpossible")
