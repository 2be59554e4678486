"""What score.py files import for raw HTTP access: `rawhttp`, `AMLRequest`, `AMLResponse`.

Azure offers them as `azureml.contrib.services.aml_request` / `aml_response` and
`azureml_inference_server_http.api.aml_request` / `aml_response`; the shim
packages re-export these. The request is a small Flask-like object (the
attributes score.py files use: method, headers, args, data, get_data(),
get_json(), ...), not a Flask request, so Flask need not be installed.
"""

from __future__ import annotations

import json
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
    func.__kaci_rawhttp__ = True  # type: ignore[attr-defined]
    return func


def raw_http_requested() -> bool:
    return _raw_http_requested


def reset_raw_http() -> None:
    global _raw_http_requested
    _raw_http_requested = False


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers (names kept as the client sent them)."""

    __slots__ = ("_items", "_lower")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._lower: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            # Repeated headers join with a comma, as HTTP allows.
            self._lower[key] = f"{self._lower[key]},{value}" if key in self._lower else value

    def __getitem__(self, key: str) -> str:
        return self._lower[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len(self._lower)

    def get_all(self, key: str) -> list[str]:
        return [v for n, v in self._items if n.lower() == key.lower()]

    getlist = get_all


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


class AMLRequest:
    """The request given to a @rawhttp run()."""

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        remote_addr: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query.encode("latin-1")
        self.full_path = f"{path}?{query}"
        self.headers = Headers(headers)
        self.args = Args(query)
        self.data = body
        self.remote_addr = remote_addr
        host = self.headers.get("host", "localhost")
        self.url = f"http://{host}{path}" + (f"?{query}" if query else "")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def content_length(self) -> int:
        return len(self.data)

    @property
    def is_json(self) -> bool:
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def get_data(
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> Any:
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            if silent:
                return None
            raise ValueError(
                "Did not attempt to load JSON data because the Content-Type is not JSON"
            )
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self) -> Any:
        return self.get_json()


class AMLResponse:
    """What a @rawhttp run() may return to set the status, headers and body itself."""

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        headers: list[tuple[str, str]] = []
        if message is None:
            body, content_type = b"{}", "application/json"
        elif json_str:
            body, content_type = json.dumps(message).encode(), "application/json"
        else:
            body = message if isinstance(message, bytes) else str(message).encode()
            content_type = "text/html; charset=utf-8"
        given = dict(response_headers or {})
        if not any(k.lower() == "content-type" for k in given):
            headers.append(("Content-Type", content_type))
        # Azure splits comma-separated values into repeated headers.
        for name, value in given.items():
            headers.extend((name, part.strip()) for part in str(value).split(","))
        self.status_code = status_code
        self.body = body
        self.headers = headers
        self.run_function_failed = run_function_failed

    @property
    def data(self) -> bytes:
        return self.body
