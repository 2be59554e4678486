"""SHIM on branch wt/aksop only: the lead takes wt/aksrt's kaci/tokens.py instead.

Written to the session's token contract so the SDK and CLI can be run end to end
before that branch is merged: a compact JWT, HS256, header {"alg":"HS256","typ":"JWT"},
payload {"iss":"kaci","aud":<namespace>/<name>,"iat":<int>,"exp":<int>}, signed with
the keys Secret's tokenSigningKey (its text, as the runtime gets it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(key: str, audience: str, now: float, lifetime_s: int) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    iat = int(now)
    claims = {"iss": "kaci", "aud": audience, "iat": iat, "exp": iat + int(lifetime_s)}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"
