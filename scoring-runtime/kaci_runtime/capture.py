"""Request and response capture: Azure's `collect_model_data`, done by the server.

With KACI_MODEL_DATA_CAPTURE=true (the operator sets it from the Webservice's
deploymentConfig.collectModelData) every scored request's body is written as an
`inputs` record and its answer as a `predictions` record, one JSON line each, with
the fields of Azure's model data collector (`$aml_dc_designation`,
`$aml_dc_correlation_id` - the request id, so inputs and predictions pair up -
`$aml_dc_scoring_timestamp`, `$aml_service_name`, `$aml_request_id`) and the payload
in `data`: for inputs the request body as the client sent it (a JSON string), for
predictions the answer's JSON value. score.py's own
ModelDataCollector writes to the same sink.

Sinks (KACI_MODEL_DATA_SINK): `stdout` (the default: any log pipeline takes it),
`folder` (KACI_MODEL_DATA_DIR, e.g. a mounted PVC, in Azure's partitioning
<service>/<designation>/<yyyy>/<mm>/<dd>/), or `http` (KACI_MODEL_DATA_URL: batches
POSTed as application/x-ndjson). KACI_MODEL_DATA_SAMPLE_RATE (0-1, default 1) picks
requests (both records of a request, or neither); KACI_MODEL_DATA_MAX_RECORD_BYTES
(default 64 KiB) cuts a payload, marking the record `"truncated": true`.

Scoring never waits for a sink, and pays little: a scored request is queued as it
came (its body and answer), and one thread makes the records and writes them in
batches. When the queue is full, by count or by bytes (a sink slower than the
traffic), records are dropped and counted (kaci_model_data_dropped), never the request.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from kaci_runtime import fastjson

log = logging.getLogger("kaci_runtime")

SINKS = ("stdout", "folder", "http")
DEFAULT_MAX_RECORD_BYTES = 64 * 1024
# The queue holds scored requests as they came; bounded by count and by bytes.
QUEUE_ITEMS = 10_000
QUEUE_BYTES = 64 << 20
BATCH_RECORDS = 512
# The writer takes what is queued this often (records reach the sink within it).
FLUSH_S = 0.1
HTTP_TIMEOUT_S = 10.0


class CaptureConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CaptureSettings:
    sink: str = "stdout"
    folder: str | None = None
    url: str | None = None
    sample_rate: float = 1.0
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    service_name: str = "default"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def settings_from(environ: Mapping[str, str]) -> CaptureSettings | None:
    """The capture settings, None when capture is off; a bad value is a CaptureConfigError
    naming the variable (the server refuses to start, as with its other settings)."""
    if not _flag(environ.get("KACI_MODEL_DATA_CAPTURE")):
        return None
    folder = (environ.get("KACI_MODEL_DATA_DIR") or "").strip() or None
    url = (environ.get("KACI_MODEL_DATA_URL") or "").strip() or None
    sink = (environ.get("KACI_MODEL_DATA_SINK") or "").strip().lower()
    sink = sink or ("folder" if folder else "http" if url else "stdout")
    if sink not in SINKS:
        raise CaptureConfigError(f"KACI_MODEL_DATA_SINK must be one of {', '.join(SINKS)}")
    if sink == "folder" and folder is None:
        raise CaptureConfigError("KACI_MODEL_DATA_SINK=folder needs KACI_MODEL_DATA_DIR")
    if sink == "http" and (url is None or not url.startswith(("http://", "https://"))):
        raise CaptureConfigError("KACI_MODEL_DATA_SINK=http needs an http(s) KACI_MODEL_DATA_URL")
    try:
        rate = float(environ.get("KACI_MODEL_DATA_SAMPLE_RATE") or 1.0)
        cap = int(environ.get("KACI_MODEL_DATA_MAX_RECORD_BYTES") or DEFAULT_MAX_RECORD_BYTES)
    except ValueError as ex:
        raise CaptureConfigError(f"KACI_MODEL_DATA_SAMPLE_RATE/MAX_RECORD_BYTES: {ex}") from None
    if not 0.0 <= rate <= 1.0:
        raise CaptureConfigError("KACI_MODEL_DATA_SAMPLE_RATE must be between 0 and 1")
    if cap < 256:
        raise CaptureConfigError("KACI_MODEL_DATA_MAX_RECORD_BYTES must be at least 256")
    return CaptureSettings(
        sink=sink,
        folder=folder,
        url=url,
        sample_rate=rate,
        max_record_bytes=cap,
        service_name=environ.get("SERVICE_NAME") or "default",
    )


class Sink(Protocol):
    def write(self, lines: list[tuple[str, bytes]]) -> None:
        """(designation, JSON line without newline) pairs, in order."""


class StdoutSink:
    def write(self, lines: list[tuple[str, bytes]]) -> None:
        out = sys.stdout.buffer
        out.write(b"".join(line + b"\n" for _, line in lines))
        out.flush()


class FolderSink:
    """Azure's blob partitioning under a folder; one file per process (workers share
    the folder), appended."""

    def __init__(self, folder: str, service: str) -> None:
        self.root = Path(folder)
        self.service = service
        self.file = f"{os.uname().nodename}-{os.getpid()}.jsonl"

    def write(self, lines: list[tuple[str, bytes]]) -> None:
        today = datetime.datetime.now(datetime.UTC)
        by_designation: dict[str, list[bytes]] = {}
        for designation, line in lines:
            by_designation.setdefault(designation, []).append(line + b"\n")
        for designation, chunk in by_designation.items():
            path = self.root.joinpath(
                self.service, designation, f"{today:%Y}", f"{today:%m}", f"{today:%d}", self.file
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as out:
                out.write(b"".join(chunk))


class HttpSink:
    def __init__(self, url: str) -> None:
        self.url = url

    def write(self, lines: list[tuple[str, bytes]]) -> None:
        body = b"".join(line + b"\n" for _, line in lines)
        # settings_from allowed http(s) URLs only: never file: or another scheme.
        req = urllib.request.Request(  # noqa: S310
            self.url, data=body, headers={"Content-Type": "application/x-ndjson"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310
            resp.read()


def make_sink(settings: CaptureSettings) -> Sink:
    if settings.sink == "folder":
        assert settings.folder is not None
        return FolderSink(settings.folder, settings.service_name)
    if settings.sink == "http":
        assert settings.url is not None
        return HttpSink(settings.url)
    return StdoutSink()


def _json_text(raw: bytes) -> bytes:
    """`raw` as a JSON string (orjson: a str has no NaN for fastjson to care about)."""
    return orjson.dumps(raw.decode("utf-8", errors="replace"))


def _data(raw: bytes, cap: int, as_json: bool) -> tuple[bytes, bool]:
    """The record's `data` as JSON bytes, and whether it was cut.

    An answer kaci encoded itself is JSON: spliced in as it is (its line breaks, only
    ever whitespace between tokens, made spaces, so a record stays one line). A request
    body is the text the client sent, as a JSON string: exactly what the model got
    (even when it is not JSON), and cheap - parsing it to check it is JSON would cost
    more than the rest of the capture (22 us for one MNIST row)."""
    if len(raw) > cap:
        return _json_text(raw[:cap]), True
    if not as_json:
        return _json_text(raw), False
    if b"\n" in raw or b"\r" in raw:
        raw = raw.replace(b"\n", b" ").replace(b"\r", b" ")
    return raw, False


@dataclass
class _Scored:
    """One scored request, queued as it was: the record is made on the writer thread."""

    request_id: str
    at: float
    body: bytes
    answer: bytes
    answer_is_json: bool


class Capture:
    """The server's capture: picks requests, queues them; one thread makes the records
    and writes them in batches."""

    def __init__(
        self,
        settings: CaptureSettings,
        sink: Sink | None = None,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink if sink is not None else make_sink(settings)
        self.on_drop = on_drop
        # Appended by the loop, taken by the writer: deque's append and popleft are
        # atomic, so neither side locks, and the writer is not woken per request (it
        # wakes every FLUSH_S and takes all there is: batches, and few thread switches).
        self.pending: deque[_Scored | tuple[str, bytes]] = deque()
        self.stopping = threading.Event()
        # Bytes held by the queue: bodies are kept as they came until written.
        self.queued_bytes = 0
        self.dropped = 0
        self.failed_batches = 0
        service = fastjson.dumps(settings.service_name)
        self._service = b',"$aml_service_name":' + service
        self.thread = threading.Thread(target=self._drain, name="kaci-capture", daemon=True)
        self.thread.start()

    def sampled(self) -> bool:
        rate = self.settings.sample_rate
        return rate >= 1.0 or (rate > 0.0 and random.random() < rate)  # noqa: S311

    def request(
        self, request_id: str, body: bytes, answer: bytes, answer_is_json: bool = True
    ) -> None:
        """A scored request: its inputs and predictions records (if sampled)."""
        if not self.sampled():
            return
        item = _Scored(request_id, time.time(), body, answer, answer_is_json)
        self._queue(item, len(body) + len(answer), 2)

    def put(self, designation: str, line: bytes) -> None:
        """One record made elsewhere (score.py's ModelDataCollector rows)."""
        self._queue((designation, line), len(line), 1)

    def _queue(self, item: _Scored | tuple[str, bytes], size: int, records: int) -> None:
        if self.queued_bytes + size > QUEUE_BYTES or len(self.pending) >= QUEUE_ITEMS:
            self._lost(records)
            return
        self.pending.append(item)
        self.queued_bytes += size  # a racy sum across threads is fine for a budget

    def _lost(self, records: int) -> None:
        self.dropped += records
        if self.on_drop is not None:
            self.on_drop(records)

    def records(self, item: _Scored) -> list[tuple[str, bytes]]:
        """The inputs and predictions lines of one scored request."""
        cap = self.settings.max_record_bytes
        stamp = datetime.datetime.fromtimestamp(item.at, datetime.UTC).replace(tzinfo=None)
        rid = orjson.dumps(item.request_id)
        common = (
            b',"$aml_dc_correlation_id":'
            + rid
            + b',"$aml_dc_scoring_timestamp":"'
            + stamp.isoformat().encode()
            + b'"'
            + self._service
            + b',"$aml_request_id":'
            + rid
        )
        out = []
        for designation, raw, as_json in (
            ("inputs", item.body, False),
            ("predictions", item.answer, item.answer_is_json),
        ):
            data, cut = _data(raw, cap, as_json)
            head = b'{"$aml_dc_designation":"' + designation.encode() + b'"'
            tail = b',"truncated":true}' if cut else b"}"
            out.append((designation, b"".join((head, common, b',"data":', data, tail))))
        return out

    def _drain(self) -> None:
        while True:
            stop = self.stopping.wait(FLUSH_S)
            while self.pending:
                self._write_some()
            if stop:
                return

    def _write_some(self) -> None:
        batch: list[tuple[str, bytes]] = []
        pending = self.pending
        while pending and len(batch) < BATCH_RECORDS:
            it = pending.popleft()
            if isinstance(it, _Scored):
                self.queued_bytes -= len(it.body) + len(it.answer)
                batch += self.records(it)
            else:
                self.queued_bytes -= len(it[1])
                batch.append(it)
        try:
            self.sink.write(batch)
        except Exception as ex:  # a sink's trouble never reaches scoring
            self.failed_batches += 1
            self._lost(len(batch))
            log.warning("model data capture: %d records lost: %s", len(batch), ex)

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, then stop the thread (at the server's exit)."""
        self.stopping.set()
        self.thread.join(timeout=timeout_s)


# The process's capture, for score.py's ModelDataCollector (kaci_runtime.modeldata).
_active: Capture | None = None


def activate(capture: Capture | None) -> None:
    global _active
    _active = capture


def active() -> Capture | None:
    return _active
