from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kaci.render import modelfiles as mf
from kaci.status.model import next_version


@pytest.mark.parametrize(
    "bad", ["", "../x", "a/../../x", "/etc/passwd", "a\x00b", "..", "a\\b", "./.."]
)
def test_names_that_escape_are_refused(bad: str) -> None:
    with pytest.raises(mf.ModelFileError):
        mf.check_name(bad)


@pytest.mark.parametrize(
    ("name", "clean"), [("model.pkl", "model.pkl"), ("./a//b", "a/b"), ("d/e.bin", "d/e.bin")]
)
def test_good_names_are_normalised(name: str, clean: str) -> None:
    assert mf.check_name(name) == clean


def test_digest_depends_on_names_and_contents() -> None:
    a = mf.digest({"m.pkl": b"1"})
    assert a.startswith("sha256:")
    assert len(a) == 7 + 64
    assert a == mf.digest({"m.pkl": b"1"})
    assert a != mf.digest({"n.pkl": b"1"})
    assert a != mf.digest({"m.pkl": b"2"})
    with pytest.raises(mf.ModelFileError):
        mf.digest({})


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.binary(max_size=20), min_size=1, max_size=4)
)
def test_digest_ignores_insertion_order(files: dict[str, bytes]) -> None:
    assert mf.digest(files) == mf.digest(dict(reversed(list(files.items()))))


def test_next_version() -> None:
    assert next_version([], "sha256:a", None) == (1, True)
    hist = [{"version": 1, "digest": "sha256:a"}, {"version": 2, "digest": "sha256:b"}]
    assert next_version(hist, "sha256:b", "sha256:b") == (2, False)
    assert next_version(hist, "sha256:c", "sha256:b") == (3, True)
    # back to older content is still a change: a new version, as Azure registers it
    assert next_version(hist, "sha256:a", "sha256:b") == (3, True)
