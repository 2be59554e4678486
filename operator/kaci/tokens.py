"""Mint a service's access token: a compact HS256 JWT (RFC 7519), standard library only.

The scoring runtime verifies it (kaci_runtime.tokens): header {"alg": "HS256", "typ":
"JWT"}, payload {"iss": "kaci", "aud": <audience>, "iat": now, "exp": now + lifetime},
each part base64url without padding, the signature HMAC-SHA256 over the first two.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _part(value: dict[str, object]) -> str:
    # Compact JSON: the verifier reads the parts as JSON, any spacing would do.
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def mint(key: bytes, audience: str, now: int, lifetime_s: int) -> str:
    """A token for `audience`, valid from `now` (Unix seconds) for `lifetime_s` seconds."""
    if not key:
        raise ValueError("the signing key is empty")
    if lifetime_s <= 0:
        raise ValueError(f"lifetime_s must be positive, got {lifetime_s}")
    header = _part({"alg": "HS256", "typ": "JWT"})
    payload = _part({"iss": "kaci", "aud": audience, "iat": now, "exp": now + lifetime_s})
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"
