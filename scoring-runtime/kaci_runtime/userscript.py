"""Loading a score.py and calling its init() and run() the way Azure's server does.

How run() is called depends on its signature and decorators, decided once at load:
- plain `run(raw_data)`: the POST body as a str (GET: the query parameters as a JSON str);
- `@rawhttp`: a werkzeug request (kaci_runtime.amlhttp.AMLRequest);
- `@input_schema` (inference-schema): the JSON body's keys as keyword arguments;
- any of these may also take `request_headers` (a dict of the request's headers).
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kaci_runtime import amlapi


class UserScriptError(Exception):
    """The score.py cannot be used (missing, does not import, no init()/run())."""


class BadInput(Exception):  # noqa: N818 - Azure's name: 400
    pass


class UnsupportedInput(Exception):  # noqa: N818 - Azure's name: 415
    pass


class UnsupportedMethod(Exception):  # noqa: N818 - 405 (200 for OPTIONS)
    pass


class Mode(enum.Enum):
    STRING = "body as a JSON string"
    RAW = "@rawhttp request"
    OBJECT = "@input_schema keyword arguments"


def _schema_decorated(func: Callable[..., Any]) -> bool:
    try:
        from inference_schema.schema_util import is_schema_decorated
    except ImportError:
        return False
    return bool(is_schema_decorated(func))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def query_parameters(args: amlapi.Args) -> dict[str, Any]:
    """Azure's GET /score rule: each value parsed as JSON if it is JSON, repeated keys as lists."""
    parsed: dict[str, Any] = {}
    for key in args:
        values = args.getlist(key)
        parsed[key] = (
            _parse_value(values[0]) if len(values) == 1 else [_parse_value(v) for v in values]
        )
    return parsed


def header_dict(headers: list[tuple[str, str]]) -> dict[str, str]:
    """`request_headers` as Azure passed them: Flask's dict(request.headers), Title-Case names."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.replace("_", "-").title()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def load_module(
    entry_script: str | None, app_root: str, source_dir: str | None = None
) -> ModuleType:
    """Import score.py as Azure does (module name `entry_module`; `main` when no script is set).

    On sys.path: the app root, then AZUREML_SOURCE_DIRECTORY (relative to the app root, as
    Azure joins it), then the script's own folder.
    """
    source = str(Path(app_root, source_dir)) if source_dir else None
    # Path() drops app_root when the script's path is absolute.
    script_dir = str(Path(app_root, entry_script).resolve().parent) if entry_script else None
    folders = (app_root, source, script_dir)
    for folder in folders:
        if folder and folder not in sys.path:
            sys.path.append(folder)
    if not entry_script:
        try:
            import main  # type: ignore[import-not-found]
        except ImportError as ex:
            raise UserScriptError(
                f"No score script found: no entry script was given and no main.py in {app_root}"
            ) from ex
        return main  # type: ignore[no-any-return]
    path = (
        Path(app_root, entry_script) if not Path(entry_script).is_absolute() else Path(entry_script)
    )
    if not path.is_file():
        raise UserScriptError(f"The entry script {path} does not exist")
    spec = importlib.util.spec_from_file_location("entry_module", path)
    if spec is None or spec.loader is None:
        raise UserScriptError(f"The entry script {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules["entry_module"] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class UserScript:
    path: str
    init: Callable[[], Any]
    run: Callable[..., Any]
    mode: Mode
    wants_headers: bool
    # The name of run()'s data parameter (STRING and RAW) or all its parameters (OBJECT).
    data_param: str
    params: list[inspect.Parameter]

    @property
    def plain_positional(self) -> bool:
        """run(raw_data) can be called with the body alone, positionally (the fast path)."""
        return (
            self.mode is Mode.STRING
            and not self.wants_headers
            and self.params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            and all(p.default is not inspect.Parameter.empty for p in self.params[1:])
        )

    @classmethod
    def load(
        cls, entry_script: str | None, app_root: str, source_dir: str | None = None
    ) -> UserScript:
        amlapi.reset_raw_http()
        module = load_module(entry_script, app_root, source_dir)
        where = getattr(module, "__file__", entry_script or "main")
        if not hasattr(module, "init"):
            raise UserScriptError(
                f"User script at {where} does not have a init() function defined."
            )
        if not hasattr(module, "run"):
            raise UserScriptError(f"User script at {where} does not have a run() function defined.")
        run = module.run
        # Azure's "driver module" indirection: call the real score script's run().
        driver = getattr(module, "driver_module", None)
        if isinstance(driver, ModuleType) and hasattr(driver, "run"):
            run = driver.run
        return cls.analyze(str(where), module.init, run)

    @classmethod
    def analyze(cls, path: str, init: Callable[[], Any], run: Callable[..., Any]) -> UserScript:
        params = list(inspect.signature(run).parameters.values())
        allowed = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if any(p.kind not in allowed for p in params):
            raise UserScriptError(
                "run() cannot accept positional-only arguments, *args, or **kwargs."
            )
        wants_headers = any(p.name == "request_headers" for p in params)
        params = [p for p in params if p.name != "request_headers"]
        if not params:
            if wants_headers:
                raise UserScriptError(
                    'run() needs to accept an argument other than "request_headers".'
                )
            raise UserScriptError("run() needs to accept an argument for input data.")
        raw = amlapi.raw_http_requested() or _real_rawhttp_requested()
        decorated = _schema_decorated(run)
        if raw and decorated:
            raise UserScriptError("run() cannot be decorated with both @rawhttp and @input_schema")
        mode = Mode.RAW if raw else Mode.OBJECT if decorated else Mode.STRING
        return cls(path, init, run, mode, wants_headers, params[0].name, params)

    # -- turning a request into run()'s arguments --------------------------------------

    def arguments(
        self,
        method: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        content_type: str,
    ) -> dict[str, Any]:
        """run()'s arguments: a string or @input_schema run() (@rawhttp: kaci_runtime.scoring)."""
        args: dict[str, Any]
        if method == "POST":
            args = self._post_arguments(body, content_type)
        elif method == "GET":
            parsed = query_parameters(amlapi.Args(query))
            if self.mode is Mode.STRING:
                args = {self.data_param: json.dumps(parsed)}
            else:
                args = self._extract(parsed)
        else:
            raise UnsupportedMethod(method)
        if self.wants_headers:
            args["request_headers"] = header_dict(headers)
        return args

    def _post_arguments(self, body: bytes, content_type: str) -> dict[str, Any]:
        if self.mode is Mode.STRING:
            try:
                return {self.data_param: body.decode("utf-8")}
            except UnicodeDecodeError as ex:
                raise BadInput(f"Input cannot be decoded as UTF-8: {ex}") from None
        mimetype = content_type.split(";", 1)[0].strip().lower()
        if not (
            mimetype == "application/json"
            or (mimetype.startswith("application/") and mimetype.endswith("+json"))
        ):
            raise UnsupportedInput("Expects Content-Type to be application/json")
        try:
            value = json.loads(body)
        except ValueError as ex:
            if body:
                raise BadInput(f"POST body could not be decoded as JSON: {ex}") from None
            raise BadInput("POST body is empty. Expecting a JSON dictionary.") from None
        if not isinstance(value, dict):
            raise BadInput("POST body should be a JSON dictionary.")
        return self._extract(value)

    def _extract(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for param in self.params:
            value = body.get(param.name, param.default)
            if value is inspect.Parameter.empty:
                raise BadInput(f"A value is not provided for the {param.name!r} parameter.")
            out[param.name] = value
        return out


def _real_rawhttp_requested() -> bool:
    # A score.py that imported the real azureml_inference_server_http's rawhttp.
    real = sys.modules.get("azureml_inference_server_http.api.aml_request")
    return bool(real is not None and getattr(real, "_rawHttpRequested", False))
