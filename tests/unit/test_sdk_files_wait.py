"""Model file collection, the OCI image layout of model files, and the wait loop."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kaci.azureml import _files
from kaci.azureml._registry import image_blobs, layer_tar, parse_reference
from kaci.azureml._wait import new_log_lines, wait_for
from kaci.azureml.exceptions import (
    ClusterUnreachableException,
    ResourceNotFoundException,
    UserErrorException,
    WaitTimeoutException,
)


def test_a_file_is_one_flat_file(tmp_path: Path) -> None:
    f = tmp_path / "sklearn_mnist_model.pkl"
    f.write_bytes(b"abc")
    (got,) = _files.collect(f)
    assert (got.name, got.size, got.sha256) == (
        "sklearn_mnist_model.pkl",
        3,
        hashlib.sha256(b"abc").hexdigest(),
    )
    assert _files.fits_configmap([got])


def test_a_folder_keeps_its_name_as_prefix_like_azure(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    names = [f.name for f in _files.collect(root)]
    assert names == ["outputs/a.txt", "outputs/sub/b.txt"]
    picked = _files.collect(root, child_paths=["sub/b.txt"])
    assert [f.name for f in picked] == ["outputs/sub/b.txt"]
    # Sub-folders cannot be ConfigMap keys: such models go to the registry.
    assert not _files.fits_configmap(_files.collect(root))


def test_large_files_do_not_fit_a_configmap(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (_files.CONFIGMAP_LIMIT + 1))
    assert not _files.fits_configmap(_files.collect(big))


def test_bad_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserErrorException, match="does not exist"):
        _files.collect(tmp_path / "missing.pkl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserErrorException, match="no files"):
        _files.collect(tmp_path / "empty")
    f = tmp_path / "x"
    f.write_text("x")
    with pytest.raises(UserErrorException, match="child_paths"):
        _files.collect(f, child_paths=["y"])


def test_digest_depends_on_names_and_contents_not_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1")
    b.write_text("2")
    fa, fb = _files.collect(a)[0], _files.collect(b)[0]
    assert _files.digest([fa, fb]) == _files.digest([fb, fa])
    b.write_text("3")
    assert _files.digest([fa, _files.collect(b)[0]]) != _files.digest([fa, fb])


def test_merge_refuses_two_files_with_one_name(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "m.pkl").write_text("1")
    (tmp_path / "x" / "m.pkl").write_text("2")
    with pytest.raises(UserErrorException, match="both named"):
        _files.merge([_files.collect(tmp_path / "m.pkl"), _files.collect(tmp_path / "x" / "m.pkl")])


def test_layer_is_reproducible_and_holds_the_files(tmp_path: Path) -> None:
    root = tmp_path / "weights"
    (root / "d").mkdir(parents=True)
    (root / "d" / "w.bin").write_bytes(b"\x01\x02")
    files = _files.collect(root)
    assert layer_tar(files) == layer_tar(files)
    with tarfile.open(fileobj=io.BytesIO(layer_tar(files))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        # Under FILES_DIR, never at the image root (where an engine adds its own files).
        assert sorted(members) == [
            "model",
            "model/weights",
            "model/weights/d",
            "model/weights/d/w.bin",
        ]
        assert members["model/weights/d"].isdir()
        assert members["model/weights/d/w.bin"].mode == 0o644
        got = tar.extractfile("model/weights/d/w.bin")
        assert got is not None
        assert got.read() == b"\x01\x02"


def test_manifest_points_at_its_blobs(tmp_path: Path) -> None:
    f = tmp_path / "m.pkl"
    f.write_bytes(b"model")
    layer, config, manifest = image_blobs(_files.collect(f))
    m = json.loads(manifest)

    def sha(b: bytes) -> str:
        return "sha256:" + hashlib.sha256(b).hexdigest()

    assert m["config"] == {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": len(config),
        "digest": sha(config),
    }
    assert m["layers"][0]["digest"] == sha(layer)
    assert json.loads(config)["rootfs"]["diff_ids"] == [sha(gzip.decompress(layer))]


def test_parse_reference() -> None:
    r = parse_reference("127.0.0.1:5000/kaci/ns/model-files/m:abc@sha256:" + "f" * 64)
    assert (r.registry, r.repository, r.tag) == ("127.0.0.1:5000", "kaci/ns/model-files/m", "abc")
    assert r.ref == "sha256:" + "f" * 64
    r2 = parse_reference("localhost/a/b")
    assert (r2.registry, r2.repository, r2.ref) == ("localhost", "a/b", "latest")
    with pytest.raises(UserErrorException):
        parse_reference("python:3.11")


@given(
    # Distinct lines: a tail that only repeats earlier lines is ambiguous by nature.
    st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=30, unique=True),
    st.data(),
)
def test_new_log_lines_never_loses_growth(log: list[str], data: st.DataObject) -> None:
    """Two tail windows of one growing log: shown + new covers the later window."""
    end1 = data.draw(st.integers(0, len(log)))
    end2 = data.draw(st.integers(end1, len(log)))
    start1 = data.draw(st.integers(0, end1))
    start2 = data.draw(st.integers(start1, end2))
    previous, current = log[start1:end1], log[start2:end2]
    new = new_log_lines(previous, current)
    assert new == current[len(current) - len(new) :]  # a suffix of the new window
    if start2 <= end1 and previous:  # the windows overlap: nothing new is dropped
        assert len(new) >= end2 - end1


def test_new_log_lines_examples() -> None:
    assert new_log_lines([], ["a", "b"]) == ["a", "b"]
    assert new_log_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_log_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_log_lines(["x"], ["y", "z"]) == ["y", "z"]


def test_wait_for_returns_the_terminal_object() -> None:
    seen: list[int] = []
    states = iter([{"n": 1}, {"n": 2}, {"n": 3}])
    got = wait_for(
        lambda: next(states),
        lambda o: "done" if o["n"] == 3 else "pending",
        None,
        lambda o: seen.append(o["n"]),
        "thing",
        interval=0,
    )
    assert got == {"n": 3}
    assert seen == [1, 2, 3]


def test_wait_for_rides_out_a_short_api_outage() -> None:
    answers: list[object] = [ClusterUnreachableException("down"), {"n": 1}]

    def fetch() -> dict[str, int]:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a  # type: ignore[return-value]

    assert wait_for(fetch, lambda o: "done", None, lambda o: None, "x", interval=0) == {"n": 1}
    with pytest.raises(ClusterUnreachableException):
        wait_for(
            lambda: (_ for _ in ()).throw(ClusterUnreachableException("down")),
            lambda o: "done",
            None,
            lambda o: None,
            "x",
            interval=0.01,
            outage_grace=0,
        )


def test_wait_for_times_out_and_reports_deletion() -> None:
    with pytest.raises(WaitTimeoutException, match="still not ready after 0s"):
        wait_for(lambda: {"n": 1}, lambda o: "pending", 0, lambda o: None, "thing", interval=0)
    with pytest.raises(ResourceNotFoundException, match="deleted"):
        wait_for(lambda: None, lambda o: "done", None, lambda o: None, "thing", interval=0)
