"""The request a @rawhttp run() gets and the response it may return: werkzeug's own classes.

Azure hands run() a Flask request and its AMLResponse is a Flask response, so
score.py files use the whole werkzeug surface: `request.files`, `.form`,
`.values`, `.stream`, `.args.get(k, type=int)`, headers as (name, value) pairs;
`resp.headers[k] = v`, `resp.mimetype = ...`, generator bodies. Rather than
imitate that surface, kaci builds a real werkzeug Request from the request it
parsed itself. Only @rawhttp scripts import this module: the plain path never
loads werkzeug.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

# Flask's defaults (MAX_FORM_MEMORY_SIZE, MAX_FORM_PARTS), which Azure's Flask app keeps.
FLASK_MAX_FORM_MEMORY_SIZE = 500_000
FLASK_MAX_FORM_PARTS = 1_000


class FlaskLikeRequest(Request):
    """The request given to a @rawhttp run(): a werkzeug Request with Flask's form limits."""

    max_form_memory_size = FLASK_MAX_FORM_MEMORY_SIZE
    max_form_parts = FLASK_MAX_FORM_PARTS


class AMLRequest(FlaskLikeRequest):
    """The name score.py files import. As on Azure, run() gets the framework's own request
    class (Flask's there, FlaskLikeRequest here), not an AMLRequest."""


class AMLResponse(Response):
    """What a @rawhttp run() returns to set the status, headers and body itself.

    Azure's rules: `json_str=True` (or a None message) sends the message as JSON;
    otherwise the message is the body as werkzeug takes it (str, bytes or an
    iterable, which is then streamed). Each value in `response_headers` is split
    at commas into repeated headers; a `Content-Type` given there replaces the
    default one. `x-ms-run-function-failed` says `run_function_failed`.
    """

    # Flask's default (werkzeug's is text/plain): Azure's AMLResponse is a Flask response.
    default_mimetype = "text/html"

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        given: Mapping[str, str] = {} if response_headers is None else response_headers
        if message is None or json_str:
            body = json.dumps({} if message is None else message)
            super().__init__(body, status=status_code, mimetype="application/json")
        else:
            super().__init__(message, status=status_code)
            # Azure looks for this exact spelling; other spellings add a second header.
            if "Content-Type" in given:
                del self.headers["Content-Type"]
        self.headers["x-ms-run-function-failed"] = str(run_function_failed)
        for name, value in given.items():
            for part in value.split(","):
                self.headers.add(name, part.strip())


def build_request(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    peer: tuple[str, int] | None,
    server: tuple[str, int] | None,
    multiprocess: bool,
) -> FlaskLikeRequest:
    """A werkzeug request from kaci's parsed one, with the WSGI environ gunicorn would give."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        # WSGI's rule: PATH_INFO is the percent-decoded path, as latin-1 text.
        "PATH_INFO": unquote(path, encoding="latin-1"),
        "QUERY_STRING": query,
        "RAW_URI": f"{path}?{query}" if query else path,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": server[0] if server else "localhost",
        "SERVER_PORT": str(server[1]) if server else "80",
        "REMOTE_ADDR": peer[0] if peer else "",
        "REMOTE_PORT": str(peer[1]) if peer else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        # The body is complete (also for chunked requests): werkzeug may read it all.
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        # Repeated headers join with a comma, as gunicorn joins them.
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return FlaskLikeRequest(environ)
