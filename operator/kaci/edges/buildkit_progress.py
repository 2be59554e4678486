"""buildctl's `--progress=rawjson` stream -> build log lines (pure).

Each stdin line is one SolveStatus: `vertexes` (build steps: a name, started,
completed, cached, error), `logs` (a step's output, base64, in pieces that may
cut a line), `statuses` (byte counters: left out) and `warnings`. A vertex is
reported again each time it changes, so what was said is remembered.

The lines use the docker driver's words, so status.buildLog, the Events and the
failure messages read the same whichever driver built: a Dockerfile step
`[ 3/12] RUN ...` is `Step 3/12 : RUN ...`, a cached one is followed by
` ---> Using cache`, an error is `ERROR: ...`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaci.edges.buildlog import BuildLog

# `[ 3/12] RUN ...`, or `[stage-0 3/12] RUN ...` in a build with several stages.
_STEP = re.compile(r"^\[(?:[^\]\s]+\s+)?\s*(\d+)/(\d+)\]\s+(.*)$")
# Vertices whose error does not fail the build: the first build of an image has no
# registry cache to import yet.
_HARMLESS = ("importing cache manifest",)


def dockerfile_step(dockerfile: str, line_no: int) -> str | None:
    """`Step k/n : <instruction>` for the instruction on (1-based) line `line_no` of
    `dockerfile`, counted as the steps are (comments, blank lines and continuation
    lines are not steps). For failures buildkitd reports by Dockerfile line only
    (a base image it cannot resolve) rather than on a step."""
    starts: list[tuple[int, str]] = []
    continued = False
    for i, raw in enumerate(dockerfile.splitlines(), start=1):
        text = raw.strip()
        if not continued and text and not text.startswith("#"):
            starts.append((i, text.rstrip("\\").strip()))
        continued = text.endswith("\\") or (continued and not text)
    for k, (start, text) in enumerate(starts, start=1):
        following = starts[k][0] if k < len(starts) else 1 << 30
        if start <= line_no < following:
            return f"Step {k}/{len(starts)} : {text}"
    return None


def step_line(name: str) -> str | None:
    """A vertex's name as a log line; None for buildkitd's bookkeeping ([internal])."""
    m = _STEP.match(name)
    if m:
        return f"Step {m.group(1)}/{m.group(2)} : {m.group(3)}"
    if name.startswith("[internal]") or name.startswith("[auth]"):
        return None
    return name


@dataclass
class RawJsonProgress:
    """Follows one build's rawjson lines into a BuildLog."""

    log: BuildLog = field(default_factory=BuildLog)
    started: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)
    # A step's error (`process "/bin/sh -c ..." did not complete successfully`) and its
    # step; the export's errors too (a push that failed).
    failed_step: str = ""
    errors: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # lines that were not JSON

    def feed_line(self, line: str) -> list[str]:
        """One line of buildctl's stderr; the new log lines it makes."""
        line = line.rstrip("\n")
        if not line.strip():
            return []
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, Mapping):
            # buildctl's own closing words (`error: failed to solve: ...`) and the
            # Dockerfile excerpt around a failed line.
            self.text.append(line)
            return self.log.add([line])
        return self.log.add(self.feed(item))

    def feed(self, item: Mapping[str, Any]) -> list[str]:
        new: list[str] = []
        for v in item.get("vertexes") or []:
            new += self._vertex(v)
        for entry in item.get("logs") or []:
            new += self._logs(entry)
        for w in item.get("warnings") or []:
            short = w.get("short")
            try:
                said = base64.b64decode(short).decode(errors="replace") if short else ""
            except (binascii.Error, TypeError):
                said = ""
            if said:
                new.append(f"WARNING: {said}")
        return new

    def _vertex(self, v: Mapping[str, Any]) -> list[str]:
        digest = str(v.get("digest") or "")
        name = str(v.get("name") or "")
        self.names[digest] = name
        line = step_line(name)
        new: list[str] = []
        if v.get("error") and name.startswith(_HARMLESS):
            if digest not in self.finished:
                self.finished.add(digest)
                new.append(f"WARNING: {v['error']}")
            return new
        if line is None:
            if v.get("error"):
                self._failed(name, str(v["error"]))
                new.append(f"ERROR: {v['error']}")
            return new
        if (v.get("started") or v.get("cached")) and digest not in self.started:
            self.started.add(digest)
            new.append(line)
            if line.startswith("Step "):
                self.log.step = line
        if v.get("completed") and digest not in self.finished:
            self.finished.add(digest)
            if v.get("cached"):
                new.append(" ---> Using cache")
            rest = self.partial.pop(digest, "")
            if rest:
                new.append(rest)
        if v.get("error"):
            self._failed(line, str(v["error"]))
            new.append(f"ERROR: {v['error']}")
        return new

    def _failed(self, where: str, error: str) -> None:
        self.errors.append(error)
        if where.startswith("Step ") and not self.failed_step:
            self.failed_step = where
            self.log.step = where
        self.log.error = self.log.error or error

    def _logs(self, entry: Mapping[str, Any]) -> list[str]:
        digest = str(entry.get("vertex") or "")
        try:
            data = base64.b64decode(str(entry.get("data") or "")).decode(errors="replace")
        except binascii.Error:
            return []
        text = self.partial.pop(digest, "") + data.replace("\r\n", "\n").replace("\r", "\n")
        *whole, rest = text.split("\n")
        if rest:
            self.partial[digest] = rest
        return [ln.rstrip() for ln in whole if ln.strip()]

    def dockerfile_line(self) -> int | None:
        """The Dockerfile line buildctl's closing words point at (`Dockerfile:12`)."""
        for line in reversed(self.text):
            m = re.match(r"^Dockerfile:(\d+)$", line.strip())
            if m:
                return int(m.group(1))
        return None

    def closing_error(self) -> str:
        """buildctl's last `error: ...` line (what the build ended with), if any."""
        for line in reversed(self.text):
            if line.lower().startswith("error:"):
                return line.split(":", 1)[1].strip()
        return ""
