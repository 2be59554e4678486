"""Token auth: verify a compact HS256 JWT (RFC 7519) as the operator mints it. Stdlib only.

A token is `base64url(header) "." base64url(payload) "." base64url(signature)`, no padding;
header {"alg": "HS256", "typ": "JWT"}, payload {"iss", "aud", "iat", "exp"}. It is valid
iff the header says HS256 (nothing else: not "none", not RS256 with the key as a public
key), the HMAC-SHA256 of the first two parts with the service's key equals the signature
(compared in constant time), `aud` is this service (`<namespace>/<name>`) and now < `exp`.
Anything malformed is simply not valid: the caller answers 401, never 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

_B64URL = re.compile(rb"[A-Za-z0-9_-]*\Z")
# A verified token's expiry, by token: the same token comes with every request.
_CACHE_LIMIT = 1024


def b64url_decode(text: bytes) -> bytes:
    """base64url without padding, strictly: other characters (and '=') are refused."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except binascii.Error as ex:
        raise ValueError(str(ex)) from None


def _json_object(part: bytes) -> dict[str, Any]:
    value = json.loads(b64url_decode(part))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _int_field(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    # bool is an int in Python; a JSON true is no time.
    if type(value) is not int:
        raise ValueError(f"{name} must be an integer")
    return value


class TokenVerifier:
    """Checks `Authorization: Bearer <token>` values for one service."""

    def __init__(self, key: bytes, audience: str) -> None:
        if not key:
            raise ValueError("the token key is empty")
        self.key = key
        self.audience = audience
        self._verified: dict[bytes, int] = {}

    def expiry(self, token: bytes) -> int:
        """The token's `exp` if it is well-formed, HS256, signed with the key and for this
        audience; ValueError otherwise (whatever the reason: the caller answers 401)."""
        parts = token.split(b".")
        if len(parts) != 3:
            raise ValueError("not a compact JWS")
        header_part, payload_part, signature_part = parts
        header = _json_object(header_part)
        if header.get("alg") != "HS256":
            raise ValueError("alg must be HS256")
        expected = hmac.new(self.key, header_part + b"." + payload_part, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, b64url_decode(signature_part)):
            raise ValueError("bad signature")
        payload = _json_object(payload_part)
        if payload.get("aud") != self.audience:
            raise ValueError("token for another service")
        return _int_field(payload, "exp")

    def valid(self, authorization: bytes | None, now: float) -> bool:
        """Whether an Authorization header value carries a valid, unexpired token."""
        if authorization is None or not authorization.startswith(b"Bearer "):
            return False
        token = authorization[7:].strip()
        exp = self._verified.get(token)
        if exp is None:
            try:
                exp = self.expiry(token)
            except (ValueError, UnicodeDecodeError, RecursionError):
                return False
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = exp
        return now < exp
