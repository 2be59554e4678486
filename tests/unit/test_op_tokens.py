"""kaci.tokens.mint makes what the scoring runtime's verifier accepts (and nothing more)."""

from __future__ import annotations

import base64
import json

import pytest
from kaci.tokens import mint
from kaci_runtime.tokens import TokenVerifier, b64url_decode

KEY = bytes(range(100, 132))
NOW = 1_800_000_000


def test_the_runtime_accepts_a_minted_token_until_it_expires() -> None:
    token = mint(KEY, "team-a/iris", NOW, 3600)
    verifier = TokenVerifier(KEY, "team-a/iris")
    assert verifier.valid(f"Bearer {token}".encode(), NOW)
    assert verifier.valid(f"Bearer {token}".encode(), NOW + 3599)
    assert not verifier.valid(f"Bearer {token}".encode(), NOW + 3600)


def test_a_minted_token_is_for_one_service_and_one_key() -> None:
    token = f"Bearer {mint(KEY, 'team-a/iris', NOW, 60)}".encode()
    assert not TokenVerifier(KEY, "team-a/other").valid(token, NOW)
    assert not TokenVerifier(bytes(32), "team-a/iris").valid(token, NOW)


def test_the_token_has_the_contracts_header_and_payload() -> None:
    header, payload, signature = mint(KEY, "ns/name", NOW, 600).split(".")
    assert "=" not in header + payload + signature
    assert json.loads(b64url_decode(header.encode())) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(b64url_decode(payload.encode())) == {
        "iss": "kaci",
        "aud": "ns/name",
        "iat": NOW,
        "exp": NOW + 600,
    }
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32


@pytest.mark.parametrize(
    ("key", "lifetime", "message"),
    [(b"", 60, "key is empty"), (KEY, 0, "must be positive"), (KEY, -5, "must be positive")],
)
def test_nonsense_is_refused(key: bytes, lifetime: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mint(key, "ns/name", NOW, lifetime)
