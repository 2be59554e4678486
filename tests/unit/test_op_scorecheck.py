from __future__ import annotations

from kaci.render.scorecheck import problem


def test_good_script() -> None:
    assert problem("def init():\n    pass\n\ndef run(raw):\n    return raw\n") is None


def test_missing_run_and_init_and_syntax() -> None:
    msg = problem("def init():\n    pass\n")
    assert msg is not None
    assert "run(raw_data)" in msg
    msg = problem("def run(x):\n    return x\n")
    assert msg is not None
    assert "init()" in msg
    msg = problem("def run(:\n")
    assert msg is not None
    assert "syntax error at line 1" in msg


def test_imported_or_assigned_run_counts() -> None:
    assert problem("from m import run\ninit = lambda: None\n") is None
