"""The `@rawhttp` marker score.py files import, and the query-string reader the routes share.

Azure offers `rawhttp` as `azureml.contrib.services.aml_request.rawhttp` and
`azureml_inference_server_http.api.aml_request.rawhttp`; the shim packages
re-export this one. The request and response classes a @rawhttp run() sees are
werkzeug's (kaci_runtime.amlhttp): they are imported only by scripts that use
them, so a plain run(raw_data) never loads werkzeug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

F = TypeVar("F", bound=Callable[..., Any])

# Azure's rule: once any function is decorated with @rawhttp, run() gets the request.
_raw_http_requested = False


def rawhttp(func: F) -> F:
    """Mark run() as wanting the raw HTTP request instead of the body as a string."""
    global _raw_http_requested
    _raw_http_requested = True
    return func


def raw_http_requested() -> bool:
    return _raw_http_requested


def reset_raw_http() -> None:
    global _raw_http_requested
    _raw_http_requested = False


class Args(Mapping[str, str]):
    """Query parameters: `args[k]` / `args.get(k)` give the first value, `getlist(k)` all."""

    __slots__ = ("_pairs",)

    def __init__(self, query: str) -> None:
        self._pairs = parse_qsl(query, keep_blank_values=True)

    def __getitem__(self, key: str) -> str:
        for k, v in self._pairs:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._pairs))

    def __len__(self) -> int:
        return len(dict.fromkeys(k for k, _ in self._pairs))

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]
