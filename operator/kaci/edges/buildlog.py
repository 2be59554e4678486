"""A build's log (the last lines, the current step) and a failure in user words (pure).

The docker driver feeds it the engine's JSON stream items (`feed`); the buildkit
driver the lines kaci.edges.buildkit_progress makes of buildctl's progress (`add`).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_PIP_MISSING = [
    re.compile(r"No matching distribution found for ([^\s]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)"),
]
_PIP_CONFLICT = re.compile(r"ResolutionImpossible|conflicting dependencies")


@dataclass
class BuildLog:
    """Accumulates the build output; keeps the last lines and the current step."""

    keep: int = 40
    lines: deque[str] = field(default_factory=deque)
    step: str = ""
    all_text: list[str] = field(default_factory=list)
    error: str | None = None
    image_id: str | None = None

    def feed(self, item: Mapping[str, Any]) -> list[str]:
        """Take one decoded stream item; return the complete new lines it carried."""
        new: list[str] = []
        if "stream" in item:
            for line in str(item["stream"]).splitlines():
                line = line.rstrip()
                if not line:
                    continue
                m = _STEP.match(line)
                if m:
                    self.step = line
                if line.startswith("Successfully built "):
                    self.image_id = line.split()[-1]
                new.append(line)
        aux = item.get("aux")
        if isinstance(aux, Mapping) and "ID" in aux:
            self.image_id = str(aux["ID"])
        if "error" in item:
            self.error = str(item["error"]).strip()
            new.append(f"ERROR: {self.error}")
        return self.add(new)

    def add(self, new: list[str]) -> list[str]:
        """Keep `new` lines (the tail and the whole text); returns them."""
        for line in new:
            self.lines.append(line)
            self.all_text.append(line)
            while len(self.lines) > self.keep:
                self.lines.popleft()
        return new

    def tail(self, n: int | None = None) -> str:
        lines = list(self.lines)
        return "\n".join(lines[-n:] if n else lines)

    def explain(self) -> str:
        """One sentence a user can act on: which step, which package."""
        return explain_failure(self.step, self.error or "", "\n".join(self.all_text))


def explain_failure(step: str, error: str, text: str) -> str:
    where = f"build failed at {step}" if step else "build failed"
    for pat in _PIP_MISSING:
        found = pat.findall(text)
        if found:
            pkg = found[-1].rstrip(")")
            return (
                f"{where}: pip could not find package {pkg} (not on the package index or in "
                f"the wheelhouse): check its name and version in condaFile/pipRequirements"
            )
    if _PIP_CONFLICT.search(text):
        return (
            f"{where}: pip found conflicting package versions: "
            "relax the pins in condaFile/pipRequirements"
        )
    if "pull access denied" in error or "manifest unknown" in error or "not found" in error:
        return f"{where}: an image could not be pulled ({error}): check baseImage and the models"
    return f"{where}: {error}" if error else where
