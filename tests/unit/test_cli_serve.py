"""`kaci serve` is kaci-runtime: it serves a score.py on 127.0.0.1 for local testing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SCORE = """
import json

def init():
    global factor
    factor = 3

def run(raw_data):
    return [x * factor for x in json.loads(raw_data)["data"]]
"""


def test_serve_runs_a_score_py(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(SCORE)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kaci.cli",
            "serve",
            "--entry_script",
            "score.py",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = None
        seen = []
        for line in proc.stdout:  # the banner names the port it bound
            seen.append(line)
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "".join(seen)
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):  # readiness turns 200 once init() ran
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        req = urllib.request.Request(
            f"{base}/score", data=json.dumps({"data": [1, 2]}).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read()) == [3, 6]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_help_is_the_runtimes() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "kaci.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0
    assert "--entry_script" in res.stdout
