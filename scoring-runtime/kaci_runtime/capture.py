"""Request and response capture: Azure's `collect_model_data`, done by the server.

With KACI_MODEL_DATA_CAPTURE=true (the operator sets it from the Webservice's
deploymentConfig.collectModelData) every scored request's body is written as an
`inputs` record and its answer as a `predictions` record, one JSON line each, with
the fields of Azure's model data collector (`$aml_dc_designation`,
`$aml_dc_correlation_id` - the request id, so inputs and predictions pair up -
`$aml_dc_scoring_timestamp`, `$aml_service_name`, `$aml_request_id`) and the payload
in `data` (the JSON value, or the text when it is not JSON). score.py's own
ModelDataCollector writes to the same sink.

Sinks (KACI_MODEL_DATA_SINK): `stdout` (the default: any log pipeline takes it),
`folder` (KACI_MODEL_DATA_DIR, e.g. a mounted PVC, in Azure's partitioning
<service>/<designation>/<yyyy>/<mm>/<dd>/), or `http` (KACI_MODEL_DATA_URL: batches
POSTed as application/x-ndjson). KACI_MODEL_DATA_SAMPLE_RATE (0-1, default 1) picks
requests (both records of a request, or neither); KACI_MODEL_DATA_MAX_RECORD_BYTES
(default 64 KiB) cuts a payload, marking the record `"truncated": true`.

Scoring never waits for a sink: records go to a bounded queue that one thread
drains in batches; when the queue is full (a sink slower than the traffic), records
are dropped and counted (kaci_model_data_dropped), never the request.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import random
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kaci_runtime import fastjson

log = logging.getLogger("kaci_runtime")

SINKS = ("stdout", "folder", "http")
DEFAULT_MAX_RECORD_BYTES = 64 * 1024
QUEUE_RECORDS = 10_000
BATCH_RECORDS = 500
# A batch waits at most this long for more records (the folder and HTTP sinks).
FLUSH_S = 0.5
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


def _payload(raw: bytes, cap: int) -> tuple[Any, bool]:
    """The body as a JSON value (its text when not JSON), cut to `cap` bytes."""
    if len(raw) > cap:
        return raw[:cap].decode("utf-8", errors="replace"), True
    try:
        return fastjson.loads(raw), False
    except ValueError:
        return raw.decode("utf-8", errors="replace"), False


class Capture:
    """The server's capture: decides which requests, makes the records, queues them."""

    def __init__(
        self,
        settings: CaptureSettings,
        sink: Sink | None = None,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink if sink is not None else make_sink(settings)
        self.on_drop = on_drop
        self.queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(QUEUE_RECORDS)
        self.dropped = 0
        self.failed_batches = 0
        self.thread = threading.Thread(target=self._drain, name="kaci-capture", daemon=True)
        self.thread.start()

    def sampled(self) -> bool:
        rate = self.settings.sample_rate
        return rate >= 1.0 or (rate > 0.0 and random.random() < rate)  # noqa: S311

    def request(self, request_id: str, body: bytes, answer: bytes) -> None:
        """A scored request: its inputs and predictions records (if sampled)."""
        if not self.sampled():
            return
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat()
        for designation, raw in (("inputs", body), ("predictions", answer)):
            data, cut = _payload(raw, self.settings.max_record_bytes)
            record: dict[str, Any] = {
                "$aml_dc_designation": designation,
                "$aml_dc_correlation_id": request_id,
                "$aml_dc_scoring_timestamp": now,
                "$aml_service_name": self.settings.service_name,
                "$aml_request_id": request_id,
                "data": data,
            }
            if cut:
                record["truncated"] = True
            self.put(designation, fastjson.dumps(record))

    def put(self, designation: str, line: bytes) -> None:
        """Queue one record (also score.py's ModelDataCollector rows); full: dropped."""
        try:
            self.queue.put_nowait((designation, line))
        except queue.Full:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(1)

    def _drain(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + (0 if isinstance(self.sink, StdoutSink) else FLUSH_S)
            stop = False
            while len(batch) < BATCH_RECORDS:
                left = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self.sink.write(batch)
            except Exception as ex:  # a sink's trouble never reaches scoring
                self.failed_batches += 1
                self.dropped += len(batch)
                if self.on_drop is not None:
                    self.on_drop(len(batch))
                log.warning("model data capture: %d records lost: %s", len(batch), ex)
            if stop:
                return

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, then stop the thread (at the server's exit)."""
        self.queue.put(None)
        self.thread.join(timeout=timeout_s)


# The process's capture, for score.py's ModelDataCollector (kaci_runtime.modeldata).
_active: Capture | None = None


def activate(capture: Capture | None) -> None:
    global _active
    _active = capture


def active() -> Capture | None:
    return _active
