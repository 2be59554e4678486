"""Waiting for a terminal state, with a rich progress display.

Polling the object once a second keeps this simple and robust across API server
restarts (a watch would need resuming); one GET a second is negligible load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from kaci.azureml.exceptions import (
    ClusterUnreachableException,
    ResourceNotFoundException,
    WaitTimeoutException,
)

Obj = dict[str, Any]
Verdict = Literal["done", "failed", "pending"]


def new_log_lines(previous: list[str], current: list[str]) -> list[str]:
    """Lines of `current` not yet shown, when both are tails of one growing log.

    The tail window slides, so find the longest end of `previous` that starts
    `current` and return what follows it.
    """
    if not previous:
        return current
    for k in range(min(len(previous), len(current)), 0, -1):
        if previous[-k:] == current[:k]:
            return current[k:]
    return current


class Display:
    """Prints state changes as lines; shows a spinner only on a terminal."""

    def __init__(self, show: bool, console: Console | None = None) -> None:
        self.show = show
        self.console = console or Console(highlight=False)
        self._status: Status | None = None

    @contextmanager
    def running(self, title: str) -> Iterator[Display]:
        if self.show and self.console.is_terminal:
            with self.console.status(escape(title)) as status:
                self._status = status
                try:
                    yield self
                finally:
                    self._status = None
        else:
            yield self

    def status(self, text: str) -> None:
        if self._status is not None:
            self._status.update(escape(text))

    def line(self, text: str, style: str | None = None) -> None:
        if self.show:
            self.console.print(escape(text), style=style, soft_wrap=True)


def wait_for(
    fetch: Callable[[], Obj | None],
    verdict: Callable[[Obj], Verdict],
    timeout_sec: float | None,
    on_poll: Callable[[Obj], None],
    what: str,
    interval: float = 1.0,
    outage_grace: float = 120.0,
) -> Obj:
    """Poll `fetch` until `verdict` says done or failed; returns the last object."""
    deadline = None if timeout_sec is None else time.monotonic() + float(timeout_sec)
    outage_since: float | None = None
    while True:
        try:
            obj = fetch()
        except ClusterUnreachableException:
            # An API server restart is not the end of a deployment: keep polling for
            # a while, then give up with the connection error.
            now = time.monotonic()
            outage_since = outage_since or now
            if now - outage_since > outage_grace:
                raise
            time.sleep(interval or 1.0)
            continue
        outage_since = None
        if obj is None:
            raise ResourceNotFoundException(f"{what} was deleted while waiting for it")
        on_poll(obj)
        v = verdict(obj)
        if v != "pending":
            return obj
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeoutException(
                f"{what} is still not ready after {timeout_sec:g}s; it may yet converge "
                "(check again later, or look at its conditions and logs)"
            )
        time.sleep(interval)
