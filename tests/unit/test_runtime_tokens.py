"""Token auth: the runtime's HS256 verifier, its settings, and the real process answering.

Tokens here are built by hand from their parts (not with kaci.tokens.mint, which
test_op_tokens.py checks against this verifier), so a bad header or payload can be made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kaci_runtime.config import ConfigError, load
from kaci_runtime.testing import LocalRuntime
from kaci_runtime.tokens import TokenVerifier, b64url_decode

KEY = bytes(range(32))
KEY_TEXT = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()
AUDIENCE = "team-a/iris"
NOW = 1_800_000_000


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def make(
    payload: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    key: bytes = KEY,
) -> bytes:
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(
        json.dumps(
            payload or {"iss": "kaci", "aud": AUDIENCE, "iat": NOW, "exp": NOW + 600}
        ).encode()
    )
    signature = b64(hmac.new(key, head + b"." + body, hashlib.sha256).digest())
    return head + b"." + body + b"." + signature


def bearer(token: bytes) -> bytes:
    return b"Bearer " + token


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(KEY, AUDIENCE)


# -- the verifier ----------------------------------------------------------------------------


def test_a_valid_token_is_accepted(verifier: TokenVerifier) -> None:
    assert verifier.valid(bearer(make()), NOW + 1)


def test_an_expired_token_is_refused(verifier: TokenVerifier) -> None:
    token = make()
    assert verifier.valid(bearer(token), NOW + 599)
    assert not verifier.valid(bearer(token), NOW + 600)  # now < exp, strictly
    # Once cached, the same token still expires.
    assert not verifier.valid(bearer(token), NOW + 601)


def test_another_services_token_is_refused(verifier: TokenVerifier) -> None:
    other = make({"iss": "kaci", "aud": "team-a/other", "iat": NOW, "exp": NOW + 600})
    assert not verifier.valid(bearer(other), NOW)
    no_aud = make({"iss": "kaci", "iat": NOW, "exp": NOW + 600})
    assert not verifier.valid(bearer(no_aud), NOW)


def test_a_tampered_payload_is_refused(verifier: TokenVerifier) -> None:
    head, _, signature = make().split(b".")
    longer = b64(json.dumps({"iss": "kaci", "aud": AUDIENCE, "exp": NOW + 10**6}).encode())
    assert not verifier.valid(bearer(head + b"." + longer + b"." + signature), NOW)


def test_a_tampered_signature_is_refused(verifier: TokenVerifier) -> None:
    head, body, signature = make().split(b".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 1
    assert not verifier.valid(bearer(head + b"." + body + b"." + b64(bytes(raw))), NOW)
    assert not verifier.valid(bearer(head + b"." + body + b"."), NOW)
    # Signed with another key.
    assert not verifier.valid(bearer(make(key=b"another key of 32 bytes, or so..")), NOW)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": "JWT"},
        {"alg": "None"},
        {"alg": "HS512", "typ": "JWT"},
        {"alg": "RS256", "typ": "JWT"},
        {"typ": "JWT"},
    ],
)
def test_only_hs256_is_accepted(verifier: TokenVerifier, header: dict[str, Any]) -> None:
    # Even when signed correctly with the key (a confused verifier would take it).
    assert not verifier.valid(bearer(make(header=header)), NOW)


def test_alg_none_without_a_signature_is_refused(verifier: TokenVerifier) -> None:
    head = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = make().split(b".")[1]
    assert not verifier.valid(bearer(head + b"." + body + b"."), NOW)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"Bearer ",
        b"Basic dXNlcjpwYXNz",
        b"Bearer not-a-token",
        b"Bearer a.b",
        b"Bearer a.b.c.d",
        b"Bearer !!!.***.???",
        b"Bearer " + b64(b"\xff\xfe") + b"." + b64(b"{}") + b".x",
        b"Bearer " + b64(b"[1, 2]") + b"." + b64(b"{}") + b".x",
        b"Bearer " + b64(b'{"alg": "HS256"') + b"." + b64(b"{}") + b".x",
        b"Bearer eyJhbGciOiJIUzI1NiJ9=.e30.x",
        b"Bearer " + b"[" * 100_000 + b".e30.x",
        b"Bearer " + b64(b"[" * 100_000) + b".e30.x",
    ],
)
def test_garbage_is_refused_not_raised(verifier: TokenVerifier, value: bytes | None) -> None:
    assert not verifier.valid(value, NOW)


def test_exp_must_be_an_integer(verifier: TokenVerifier) -> None:
    for exp in ("1900000000", True, 1.9e9, None):
        token = make({"iss": "kaci", "aud": AUDIENCE, "iat": NOW, "exp": exp})
        assert not verifier.valid(bearer(token), NOW)


def test_a_signed_payload_that_is_not_an_object_is_refused(verifier: TokenVerifier) -> None:
    head = b64(json.dumps({"alg": "HS256"}).encode())
    body = b64(b'"team-a/iris"')
    signature = b64(hmac.new(KEY, head + b"." + body, hashlib.sha256).digest())
    assert not verifier.valid(bearer(head + b"." + body + b"." + signature), NOW)


# -- settings --------------------------------------------------------------------------------


def env(**extra: str) -> dict[str, str]:
    return {"AML_APP_ROOT": "/var/azureml-app", **extra}


def test_token_key_and_audience_are_read() -> None:
    config, _ = load([], env(KACI_AUTH_TOKEN_KEY=KEY_TEXT, KACI_AUTH_TOKEN_AUDIENCE=AUDIENCE))
    assert config.token_key == KEY
    assert config.token_audience == AUDIENCE
    assert KEY_TEXT not in repr(config)


def test_token_key_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "tokenSigningKey"
    path.write_text(KEY_TEXT + "\n")
    environ = env(KACI_AUTH_TOKEN_KEY_FILE=str(path), KACI_AUTH_TOKEN_AUDIENCE=AUDIENCE)
    config, _ = load([], environ)
    assert config.token_key == KEY


def test_no_token_key_means_no_token_auth() -> None:
    config, _ = load([], env(KACI_AUTH_PRIMARY_KEY="k1"))
    assert config.token_key is None
    assert config.auth_keys == ("k1",)


def test_with_a_token_key_the_keys_are_dropped_and_told() -> None:
    environ = env(
        KACI_AUTH_TOKEN_KEY=KEY_TEXT, KACI_AUTH_TOKEN_AUDIENCE=AUDIENCE, KACI_AUTH_PRIMARY_KEY="k1"
    )
    config, _ = load([], environ)
    assert config.auth_keys == ()
    assert any("tokens only" in w for w in config.warnings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"KACI_AUTH_TOKEN_KEY": KEY_TEXT}, "KACI_AUTH_TOKEN_AUDIENCE is not"),
        ({"KACI_AUTH_TOKEN_KEY": KEY_TEXT + "=", "KACI_AUTH_TOKEN_AUDIENCE": "a/b"}, "base64url"),
        ({"KACI_AUTH_TOKEN_KEY": "not base64!", "KACI_AUTH_TOKEN_AUDIENCE": "a/b"}, "base64url"),
        ({"KACI_AUTH_TOKEN_KEY": "c2hvcnQ", "KACI_AUTH_TOKEN_AUDIENCE": "a/b"}, "too short"),
        ({"KACI_AUTH_TOKEN_KEY_FILE": "/nonexistent/key"}, "cannot read"),
    ],
)
def test_bad_token_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load([], env(**environ))
    assert info.value.exit_code == 3


# -- the real process --------------------------------------------------------------------------

SCRIPT = """
def init():
    pass

def run(raw_data):
    return {"got": raw_data}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    folder = tmp_path_factory.mktemp("tokens")
    script = folder / "score.py"
    script.write_text(textwrap.dedent(SCRIPT))
    key_file = folder / "tokenSigningKey"
    key_file.write_text(KEY_TEXT)
    environ = {
        "KACI_AUTH_TOKEN_KEY_FILE": str(key_file),
        "KACI_AUTH_TOKEN_AUDIENCE": AUDIENCE,
        # Set too, as a confused operator might: never accepted while tokens are on.
        "KACI_AUTH_PRIMARY_KEY": "primary-key",
    }
    with LocalRuntime(script, env=environ, cwd=folder) as rt:
        yield rt


def now_token(lifetime: int = 600, audience: str = AUDIENCE) -> bytes:
    now = int(time.time())
    return make({"iss": "kaci", "aud": audience, "iat": now, "exp": now + lifetime})


def score(rt: LocalRuntime, authorization: bytes | None) -> tuple[int, dict[str, str], bytes]:
    headers = {} if authorization is None else {"Authorization": authorization.decode("latin-1")}
    return rt.request("POST", "/score", b"hello", headers)


def test_a_valid_token_scores(served: LocalRuntime) -> None:
    status, _, body = score(served, bearer(now_token()))
    assert status == 200
    assert json.loads(body) == {"got": "hello"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        b"Bearer primary-key",
        bearer(now_token(lifetime=-1)),
        bearer(now_token(audience="team-b/iris")),
        bearer(now_token()[:-2] + b"AA"),
        bearer(make(header={"alg": "none"})),
        b"Bearer \xff\xfe.garbage",
    ],
    ids=["none", "a-key", "expired", "other-service", "tampered", "alg-none", "garbage"],
)
def test_anything_else_is_401_with_azures_shape(
    served: LocalRuntime, authorization: bytes | None
) -> None:
    status, headers, body = score(served, authorization)
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    assert headers["x-ms-run-function-failed"] == "False"
    assert "x-ms-request-id" in headers
    assert json.loads(body) == {
        "message": "Unauthorized: send a valid token as 'Authorization: Bearer <token>'"
    }


def test_swagger_takes_the_token_too(served: LocalRuntime) -> None:
    assert served.request("GET", "/swagger.json")[0] == 401
    status, _, _ = served.request(
        "GET", "/swagger.json", headers={"Authorization": bearer(now_token()).decode()}
    )
    assert status == 200


def test_liveness_and_readiness_need_no_token(served: LocalRuntime) -> None:
    assert served.request("GET", "/")[0] == 200
    assert served.request("GET", "/ready")[0] == 200
