"""CORS for AML_CORS_ORIGINS, answering as azmlinfsrv's flask-cors setup does.

azmlinfsrv enables flask-cors on its routes (`/`, `/score`, `/swagger.json`) with the
given origins and methods GET and POST, everything else at flask-cors' defaults:
- a request whose `Origin` matches an allowed origin (case-insensitive; an entry with
  regex characters, such as `*` or `https://.*\\.example\\.com`, is a pattern) gets
  `Access-Control-Allow-Origin: <that origin>`; one that does not match gets nothing;
- a request without `Origin` gets the first allowed origin in sorted order (`*` when
  `*` is allowed);
- a preflight (`OPTIONS` with `Access-Control-Request-Method` GET or POST) also gets
  `Access-Control-Allow-Methods: GET, POST` and the requested headers, sorted;
- `Vary: Origin` unless the answer is `*` and there is one plain origin.
Only computed when CORS is on; the plain path never sees this module.
"""

from __future__ import annotations

import re

ALLOWED_METHODS = "GET, POST"
_REGEX_HINTS = frozenset("*\\]?$^[]()")
ROUTES = frozenset((b"/", b"/score", b"/swagger.json"))


def _pattern(origin: str) -> str | re.Pattern[str]:
    if origin == "*":
        origin = ".*"
    if _REGEX_HINTS.isdisjoint(origin):
        return origin
    return re.compile(origin, re.IGNORECASE)


class Cors:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self.patterns = [_pattern(o) for o in origins]
        self.allow_all = any(isinstance(p, re.Pattern) and p.pattern == ".*" for p in self.patterns)
        self.has_regex = any(isinstance(p, re.Pattern) for p in self.patterns)
        self.plain = sorted(p for p in self.patterns if isinstance(p, str))

    def _matches(self, origin: str) -> bool:
        folded = origin.casefold()
        for p in self.patterns:
            if isinstance(p, str):
                if p.casefold() == folded:
                    return True
            elif p.match(origin):
                return True
        return False

    def headers(self, method: bytes, raw_headers: list[tuple[bytes, bytes]]) -> list[bytes]:
        """The CORS header lines for an answer to this request (may be none)."""
        wanted: dict[bytes, str] = {}
        for name, value in raw_headers:
            key = name.lower()
            if key in (
                b"origin",
                b"access-control-request-method",
                b"access-control-request-headers",
                b"access-control-request-private-network",
            ):
                wanted.setdefault(key, value.decode("latin-1"))
        origin = wanted.get(b"origin")
        if origin:
            if not self._matches(origin):
                return []
            allowed = [origin]
        elif self.allow_all:
            allowed = ["*"]
        else:
            allowed = self.plain
        if not allowed:
            return []
        # flask-cors computes a list but sends its first entry only.
        lines = [f"Access-Control-Allow-Origin: {allowed[0]}\r\n"]
        if wanted.get(b"access-control-request-private-network") == "true":
            lines.append("Access-Control-Allow-Private-Network: false\r\n")
        if method == b"OPTIONS":
            asked = wanted.get(b"access-control-request-method", "").upper()
            # flask-cors tests the method as a substring of "GET, POST".
            if asked and asked in ALLOWED_METHODS:
                requested = wanted.get(b"access-control-request-headers")
                if requested:
                    names = sorted(h.strip() for h in requested.split(","))
                    joined = ", ".join(names)
                    if joined:
                        lines.append(f"Access-Control-Allow-Headers: {joined}\r\n")
                lines.append(f"Access-Control-Allow-Methods: {ALLOWED_METHODS}\r\n")
        if allowed[0] != "*" and (len(self.patterns) > 1 or len(allowed) > 1 or self.has_regex):
            lines.append("Vary: Origin\r\n")
        return [line.encode("latin-1") for line in lines]
