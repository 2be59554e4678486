"""kaci.registry's pure parts: references as Docker names them, credentials from a
docker config.json, WWW-Authenticate challenges, and an image's files from its
layers (later layers win, whiteouts remove, names may not escape)."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from pathlib import Path

import pytest
from kaci.registry import reference
from kaci.registry.auth import (
    Credentials,
    credentials_for,
    key_host,
    load_config,
    parse_challenge,
    scope_for,
)
from kaci.registry.layers import LayerError, read_files


def test_references() -> None:
    r = reference.parse("127.0.0.1:5000/kaci/ns/img:abc")
    assert (r.host, r.repository, r.tag, r.digest) == ("127.0.0.1:5000", "kaci/ns/img", "abc", None)
    assert r.api_host == "127.0.0.1:5000"
    hub = reference.parse("python:3.11-slim")
    assert (hub.host, hub.repository, hub.tag) == ("docker.io", "library/python", "3.11-slim")
    assert hub.api_host == "registry-1.docker.io"
    assert reference.parse("bitnami/redis").repository == "bitnami/redis"
    d = "sha256:" + "a" * 64
    pinned = reference.parse(f"localhost/x@{d}")
    assert (pinned.host, pinned.target) == ("localhost", d)
    assert reference.parse("h.io/a/b:t").target == "t"
    assert reference.parse("h.io/a/b").target == "latest"
    assert str(reference.parse(f"h.io:443/a:t@{d}")) == f"h.io:443/a:t@{d}"
    for bad in ("h.io/UPPER:t", "h.io/a@notadigest", "h.io/"):
        with pytest.raises(reference.ReferenceError):
            reference.parse(bad)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_credentials_from_auths_in_every_key_shape() -> None:
    config = {
        "auths": {
            "https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpass")},
            "http://127.0.0.1:5050": {"auth": _b64("kaci:s3cr:et")},
            "registry.example.com": {"username": "u", "password": "p"},
            "token.example.com": {"auth": _b64("<token>:"), "identitytoken": "refresh-me"},
        }
    }
    assert credentials_for(config, "docker.io") == Credentials("hubuser", "hubpass")
    assert credentials_for(config, "registry-1.docker.io") == Credentials("hubuser", "hubpass")
    # a password may hold a colon: only the first one splits
    assert credentials_for(config, "127.0.0.1:5050") == Credentials("kaci", "s3cr:et")
    assert credentials_for(config, "registry.example.com") == Credentials("u", "p")
    assert credentials_for(config, "token.example.com") == Credentials("<token>", "", "refresh-me")
    assert credentials_for(config, "127.0.0.1:5000") is None
    assert credentials_for({}, "docker.io") is None
    assert Credentials("kaci", "pw").basic() == "Basic " + _b64("kaci:pw")
    assert Credentials().basic() is None
    assert key_host("https://Registry.Example.com/v2/") == "registry.example.com"


def test_load_config(tmp_path: Path) -> None:
    assert load_config(tmp_path / "none.json") == {}
    (tmp_path / "config.json").write_text('{"auths": {}}')
    assert load_config(tmp_path / "config.json") == {"auths": {}}


def test_bearer_challenge_with_commas_in_the_scope() -> None:
    c = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push"'
    )
    assert c is not None
    assert c.scheme == "bearer"
    assert dict(c.params) == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:team/app:pull,push",
    }


def test_basic_challenge_and_odd_spacing() -> None:
    c = parse_challenge('Basic realm="kaci test"')
    assert c is not None
    assert (c.scheme, dict(c.params)) == ("basic", {"realm": "kaci test"})
    c = parse_challenge(
        'bearer  realm = "http://127.0.0.1:1/t" , service=reg, error="insufficient_scope"'
    )
    assert c is not None
    assert dict(c.params) == {
        "realm": "http://127.0.0.1:1/t",
        "service": "reg",
        "error": "insufficient_scope",
    }
    assert parse_challenge("") is None


def test_scopes() -> None:
    assert scope_for("kaci/ns/img", push=False) == "repository:kaci/ns/img:pull"
    assert scope_for("kaci/ns/img", push=True) == "repository:kaci/ns/img:pull,push"


def _layer(entries: list[tuple[str, bytes | None]], gz: bool = True) -> tuple[str, io.BytesIO]:
    """A layer tar: (name, bytes) files, (name/, None) folders, (name, None) symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name.rstrip("/"))
            if data is None and name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "elsewhere"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else "")
    return media, io.BytesIO(gzip.compress(raw) if gz else raw)


def test_layers_apply_in_order_with_whiteouts() -> None:
    layers = [
        _layer([("model/", None), ("model/a.bin", b"a1"), ("model/old/x", b"x"), ("etc/p", b"p")]),
        _layer([("model/", None), ("model/a.bin", b"a2"), ("model/.wh.old", b"")], gz=False),
        _layer([("model/sub/.wh..wh..opq", b""), ("model/sub/n", b"n"), ("./model/b", b"b")]),
    ]
    assert read_files(layers, "/model", 1 << 20) == {"a.bin": b"a2", "sub/n": b"n", "b": b"b"}


def test_layers_from_the_root_and_an_opaque_folder() -> None:
    layers = [
        _layer([("keep", b"k"), ("d/gone", b"g")]),
        _layer([("d/.wh..wh..opq", b""), ("d/new", b"n"), ("link", None)]),
    ]
    assert read_files(layers, "/", 1 << 20) == {"keep": b"k", "d/new": b"n"}


def test_whiteout_of_the_asked_folder_empties_it() -> None:
    layers = [_layer([("model/a", b"a")]), _layer([(".wh.model", b"")])]
    assert read_files(layers, "model", 1 << 20) == {}


def test_layers_refuse_escapes_size_and_zstd() -> None:
    with pytest.raises(LayerError, match="leaves the image"):
        read_files([_layer([("../../etc/passwd", b"x")])], "/", 1 << 20)
    with pytest.raises(LayerError, match="larger than 3 bytes"):
        read_files([_layer([("a", b"12"), ("b", b"34")])], "/", 3)
    zstd = ("application/vnd.oci.image.layer.v1.tar+zstd", io.BytesIO(b"\x28\xb5\x2f\xfd"))
    with pytest.raises(LayerError, match="gzip"):
        read_files([zstd], "/", 1 << 20)
