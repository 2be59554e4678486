"""Azure's request-id headers: which ids an answer carries, and when an id is refused (431).

The rules of azmlinfsrv 1.5.1:
- `x-request-id` is the client's, else a new UUID; over 100 characters: 431, and the
  answer carries no id at all;
- `x-ms-request-id` (deprecated) and `x-ms-client-request-id`: a lone `x-ms-request-id`
  is also the client request id; without it, `x-ms-request-id` is the client request id,
  else the request id; either over 100 characters: 431, the answer keeps `x-request-id`;
- `TraceId` (Office's tracing header) is echoed.
"""

from __future__ import annotations

import uuid

HEADER_LIMIT = 100
REQUEST_ID_TOO_LONG = f"x-request-id must not exceed {HEADER_LIMIT} characters"
CLIENT_ID_TOO_LONG = (
    f"x-ms-request-id and x-ms-client-request-id must not exceed {HEADER_LIMIT} characters"
)


class IdMaker:
    """UUID-shaped, unique ids: a random per-process prefix and a counter. uuid4() per
    request costs a getrandom() syscall and ~5x the time."""

    __slots__ = ("counter", "prefix")

    def __init__(self) -> None:
        raw = uuid.uuid4().hex
        self.prefix = f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-{raw[16:20]}-".encode()
        self.counter = 0

    def new(self) -> bytes:
        self.counter += 1
        return b"%s%012x" % (self.prefix, self.counter)


def request_ids(watched: list[bytes | None], ids: IdMaker) -> tuple[list[bytes], str | None]:
    """The id header lines for the answer, and the 431 message when an id is too long."""
    # Slots of kaci_runtime.protocol._WATCHED: 3 x-request-id, 4 x-ms-request-id,
    # 5 x-ms-client-request-id, 7 traceid (literals: this runs for every request).
    given = watched[3]
    trace = watched[7]
    if given is not None and len(given) > HEADER_LIMIT:
        return ([b"traceid: ", trace, b"\r\n"] if trace is not None else []), REQUEST_ID_TOO_LONG
    rid = given if given else ids.new()
    legacy, client = watched[4], watched[5]
    if legacy:
        client = client or legacy
    else:
        legacy = client or rid
    out = [b"x-request-id: ", rid, b"\r\n"]
    problem = None
    if len(legacy) > HEADER_LIMIT or (client and len(client) > HEADER_LIMIT):
        problem = CLIENT_ID_TOO_LONG
    else:
        out += [b"x-ms-request-id: ", legacy, b"\r\n"]
        if client:
            out += [b"x-ms-client-request-id: ", client, b"\r\n"]
    if trace is not None:
        out += [b"traceid: ", trace, b"\r\n"]
    return out, problem
