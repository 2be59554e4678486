"""The runtime's settings: azmlinfsrv's flags and environment variables, plus kaci's own.

Flags win over environment variables, which win over defaults, as in azmlinfsrv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from kaci_runtime import __version__
from kaci_runtime.capture import CaptureConfigError, CaptureSettings
from kaci_runtime.capture import settings_from as capture_settings
from kaci_runtime.tokens import b64url_decode

DEFAULT_PORT = 5001
# Azure's default scoring timeout: one hour.
DEFAULT_SCORING_TIMEOUT_MS = 3_600_000
DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024
DEFAULT_HEALTH_PORT = 5000
# azmlinfsrv exits with 1 on a command line it cannot parse (and prints its help).
EXIT_BAD_ARGUMENTS = 1

# The settings a config.json (--config_file, AZUREML_CONFIG_FILE, or config.json in the
# app root or the entry script's folder) may hold: azmlinfsrv reads exactly these names.
FILE_SETTINGS = (
    "AZUREML_ENTRY_SCRIPT",
    "AZUREML_SOURCE_DIRECTORY",
    "AZUREML_MODEL_DIR",
    "SERVICE_NAME",
    "SERVICE_VERSION",
    "SERVICE_PATH_PREFIX",
    "SCORING_TIMEOUT_MS",
    "AZUREML_LOG_LEVEL",
    "WORKSPACE_NAME",
    "HOSTNAME",
    "APP_INSIGHTS_LOG_RESPONSE_ENABLED",
    "AZUREML_DEBUG_PORT",
)


# azmlinfsrv's exit codes for a bad setting: 1 for a command-line value (argparse refuses
# it), 3 for an environment or config-file value (its worker's boot error).
EXIT_BAD_FLAG = 1
EXIT_BAD_SETTING = 3


class ConfigError(ValueError):
    def __init__(self, message: str, exit_code: int = EXIT_BAD_SETTING) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Config:
    entry_script: str | None
    model_dir: str | None
    app_root: str
    host: str = "0.0.0.0"  # noqa: S104 - a container's server listens on all interfaces
    port: int = DEFAULT_PORT
    worker_count: int = 1
    scoring_timeout_ms: int = DEFAULT_SCORING_TIMEOUT_MS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    auth_keys: tuple[str, ...] = field(default=(), repr=False)
    fast_json: bool = True
    access_log: bool = False
    graceful_timeout_s: float = 30.0
    # x-ms-server-version's value; None: the header is not sent.
    server_version: str | None = f"kaci-runtime/{__version__}"
    # AZUREML_SOURCE_DIRECTORY, relative to the app root: put on sys.path before score.py loads.
    source_dir: str | None = None
    # AML_CORS_ORIGINS: comma-separated origins (or patterns) allowed to call the service.
    cors_origins: tuple[str, ...] = ()
    # A second port serving the same routes (SEPERATE_HEALTH_ENDPOINT=true), or None.
    health_port: int | None = None
    service_name: str = "ML service"
    service_version: str = "1.0"
    service_path_prefix: str = ""
    log_level: str = "INFO"
    config_file: str | None = None
    # Settings accepted for azmlinfsrv's sake that kaci does not act on: told in the log.
    warnings: tuple[str, ...] = ()
    # AKS's front-end limits (KACI_MAX_CONCURRENT_REQUESTS, KACI_MAX_REQUEST_WAIT_MS): run()
    # calls at once in this container, and the longest a request waits for one. None: no limit.
    max_concurrent_requests: int | None = None
    max_request_wait_ms: int | None = None
    # Token auth (KACI_AUTH_TOKEN_KEY[_FILE], KACI_AUTH_TOKEN_AUDIENCE): the HS256 key and this
    # service's audience; with a key set, only tokens are accepted, never keys.
    token_key: bytes | None = field(default=None, repr=False)
    token_audience: str = ""
    # Request/response capture (Azure's collect_model_data; kaci_runtime.capture): None off.
    capture: CaptureSettings | None = None

    @property
    def limited(self) -> bool:
        """Whether /score goes through the front-end queue (kaci_runtime.limits)."""
        return self.max_concurrent_requests is not None or self.max_request_wait_ms is not None


def _int(
    name: str,
    flag: str | None,
    fallback: str | None,
    default: str,
    low: int,
    high: int | None = None,
) -> int:
    """An integer setting: the flag's value, else the environment's (or the file's), else
    the default; a bad one is a ConfigError with the exit code of where it came from."""
    text = flag or fallback or default
    code = EXIT_BAD_FLAG if flag else EXIT_BAD_SETTING
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {text!r}", code) from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}", code)
    return value


def _flag(text: str | None, default: bool) -> bool:
    if text is None or not text.strip():
        return default
    return text.strip().lower() not in {"0", "false", "no", "off"}


def _key(environ: Mapping[str, str], which: str) -> str:
    """An auth key from KACI_AUTH_<which>_KEY, or from the file KACI_AUTH_<which>_KEY_FILE names
    (a mounted Secret: the key never shows in the Pod's environment)."""
    value = environ.get(f"KACI_AUTH_{which}_KEY", "").strip()
    path = environ.get(f"KACI_AUTH_{which}_KEY_FILE", "").strip()
    if not value and path:
        try:
            value = Path(path).read_text().strip()
        except OSError as ex:
            raise ConfigError(f"KACI_AUTH_{which}_KEY_FILE: cannot read {path}: {ex}") from None
    return value


def _optional_int(environ: Mapping[str, str], name: str) -> int | None:
    """A positive integer from the environment, or None when unset (no limit). Azure's
    AksWebservice refuses zero and below for these settings: so does kaci."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    return _int(name, None, text, text, 1)


def _capture(environ: Mapping[str, str]) -> CaptureSettings | None:
    try:
        return capture_settings(environ)
    except CaptureConfigError as ex:
        raise ConfigError(str(ex)) from None


def _token_key(environ: Mapping[str, str]) -> bytes | None:
    """The token signing key: base64url text (the keys Secret's tokenSigningKey), decoded."""
    text = _key(environ, "TOKEN")
    if not text:
        return None
    try:
        key = b64url_decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ConfigError("KACI_AUTH_TOKEN_KEY must be base64url without padding") from None
    if len(key) < 16:
        raise ConfigError(f"KACI_AUTH_TOKEN_KEY is too short: {len(key)} bytes, at least 16")
    return key


class _Parser(argparse.ArgumentParser):
    """azmlinfsrv's answer to a bad command line: the error, its full help, exit code 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        # azmlinfsrv: then a blank line and the whole help, on stdout.
        print()
        self.print_help()
        raise SystemExit(EXIT_BAD_ARGUMENTS)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="kaci-runtime",
        description=(
            "Serve an Azure ML score.py (init()/run()) over HTTP: GET / (liveness), GET /ready, "
            "POST /score, GET /swagger.json, GET /metrics. Flags and environment variables "
            "follow azmlinfsrv (azureml-inference-server-http)."
        ),
        epilog=(
            "environment: AZUREML_ENTRY_SCRIPT, AZUREML_MODEL_DIR, AML_APP_ROOT, SERVER_PORT, "
            "WORKER_COUNT, SCORING_TIMEOUT_MS, SERVICE_NAME, SERVICE_VERSION, SERVICE_PATH_PREFIX, "
            "AZUREML_SOURCE_DIRECTORY, AZUREML_CONFIG_FILE, AML_CORS_ORIGINS, "
            "SEPERATE_HEALTH_ENDPOINT, HEALTH_PORT, SERVER_VERSION_LOG_RESPONSE_ENABLED; "
            "kaci's own: KACI_HOST, KACI_MAX_REQUEST_BYTES, KACI_AUTH_PRIMARY_KEY, "
            "KACI_AUTH_SECONDARY_KEY (or *_KEY_FILE), KACI_AUTH_TOKEN_KEY (or _FILE) and "
            "KACI_AUTH_TOKEN_AUDIENCE, KACI_MAX_CONCURRENT_REQUESTS, KACI_MAX_REQUEST_WAIT_MS, "
            "KACI_FAST_JSON=0 (standard json.loads), "
            "KACI_ACCESS_LOG=1, "
            "KACI_GRACEFUL_TIMEOUT_S. Example: kaci-runtime --entry_script score.py "
            "--model_dir ./models --port 5001"
        ),
    )
    p.add_argument("--entry_script", help="the score.py to serve (relative to AML_APP_ROOT)")
    p.add_argument("--model_dir", help="the model folder; becomes AZUREML_MODEL_DIR")
    p.add_argument("--port", help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--worker_count", help="worker processes sharing the port (default 1)")
    p.add_argument("--scoring_timeout_ms", help="run() time limit in ms (default one hour)")
    p.add_argument("--max_request_bytes", help="largest request body accepted (default 100 MiB)")
    p.add_argument("--access_log", action="store_true", help="log one line per request")
    p.add_argument(
        "--health_port",
        help=f"the second port when SEPERATE_HEALTH_ENDPOINT=true (default {DEFAULT_HEALTH_PORT})",
    )
    p.add_argument(
        "--access_control_allow_origins",
        help='enable CORS for these origins, comma-separated (e.g. "microsoft.com, bing.com")',
    )
    p.add_argument("--config_file", help="a JSON file of settings (azmlinfsrv's config.json)")
    p.add_argument(
        "--appinsights_instrumentation_key",
        help="accepted for azmlinfsrv's sake; Application Insights is not supported (a warning)",
    )
    # azmlinfsrv's hidden transport switch; nothing to switch in kaci.
    p.add_argument("--rest", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--version", action="version", version=f"kaci-runtime {__version__}")
    return p


def _config_file(
    flag: str | None, environ: Mapping[str, str], app_root: str, entry: str | None
) -> str | None:
    """azmlinfsrv's search: the flag, AZUREML_CONFIG_FILE, then a non-empty config.json in the
    app root or the entry script's folder."""

    def usable(path: str | None) -> bool:
        return bool(path) and Path(str(path)).is_file() and Path(str(path)).stat().st_size > 0

    given = os.path.realpath(flag) if flag else environ.get("AZUREML_CONFIG_FILE")
    if given:
        if not usable(given):
            raise ConfigError(f"config file {given}: not found or empty")
        return given
    folders = [app_root]
    if entry:
        folders.append(str(Path(entry).resolve().parent))
    for folder in folders:
        candidate = str(Path(folder, "config.json"))
        if usable(candidate):
            return candidate
    return None


def _read_config_file(path: str) -> tuple[dict[str, str], list[str]]:
    """The settings in a config.json as strings, and warnings about the keys it ignores."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as ex:
        raise ConfigError(f"config file {path}: {ex}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must hold a JSON object")
    settings = {k: str(v) for k, v in data.items() if k in FILE_SETTINGS and v is not None}
    extra = sorted(k for k in data if k not in FILE_SETTINGS)
    warnings = []
    if extra:
        warnings.append(f"config file {path}: keys not supported by the server: {extra}")
    return settings, warnings


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.IGNORECASE)


def _app_insights(flag_key: str | None, environ: Mapping[str, str]) -> tuple[bool, dict[str, str]]:
    """AML_APP_INSIGHTS_ENABLED / _KEY as azmlinfsrv leaves them for score.py: enabled only with
    a key that is a UUID (the flag's key counts as enabling), else "false"."""
    out: dict[str, str] = {}
    enabled = environ.get("AML_APP_INSIGHTS_ENABLED")
    key = environ.get("AML_APP_INSIGHTS_KEY")
    if flag_key is not None:
        enabled, key = "true", flag_key
        out["AML_APP_INSIGHTS_KEY"] = flag_key
    on = enabled == "true" and key is not None and bool(_UUID.match(key))
    out["AML_APP_INSIGHTS_ENABLED"] = "true" if on else "false"
    return on, out


def load(argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[Config, dict[str, str]]:
    """The settings, and the environment variables score.py must see (Azure sets them too)."""
    args = parser().parse_args(argv)
    exports: dict[str, str] = {}
    warnings: list[str] = []
    # azmlinfsrv's rule: the app root is AML_APP_ROOT, else the working directory.
    app_root = environ.get("AML_APP_ROOT") or str(Path.cwd())
    early_entry = args.entry_script or environ.get("AZUREML_ENTRY_SCRIPT")
    config_file = _config_file(args.config_file, environ, app_root, early_entry)
    file_settings: dict[str, str] = {}
    if config_file:
        file_settings, file_warnings = _read_config_file(config_file)
        warnings += file_warnings
        if args.config_file:
            exports["AZUREML_CONFIG_FILE"] = config_file

    def setting(name: str) -> str | None:
        # Environment variables win over the config file, as in azmlinfsrv.
        return environ.get(name) or file_settings.get(name) or None

    entry = setting("AZUREML_ENTRY_SCRIPT")
    if args.entry_script:
        entry = os.path.realpath(args.entry_script)
        exports["AZUREML_ENTRY_SCRIPT"] = entry
    model_dir = args.model_dir or environ.get("AZUREML_MODEL_DIR") or None
    if args.model_dir:
        model_dir = os.path.realpath(args.model_dir)
        # As given, as azmlinfsrv exports it (a relative path stays relative to the app).
        exports["AZUREML_MODEL_DIR"] = args.model_dir
    elif model_dir is None and file_settings.get("AZUREML_MODEL_DIR"):
        model_dir = file_settings["AZUREML_MODEL_DIR"]
    keys = tuple(k for k in (_key(environ, "PRIMARY"), _key(environ, "SECONDARY")) if k)
    token_key = _token_key(environ)
    token_audience = environ.get("KACI_AUTH_TOKEN_AUDIENCE", "").strip()
    if token_key is not None:
        if not token_audience:
            raise ConfigError("KACI_AUTH_TOKEN_KEY is set but KACI_AUTH_TOKEN_AUDIENCE is not")
        if keys:
            # Azure: key auth and token auth are exclusive; the token key wins.
            warnings.append("token auth is on: the auth keys are ignored (tokens only)")
            keys = ()

    cors_text = args.access_control_allow_origins
    if cors_text is None:
        cors_text = environ.get("AML_CORS_ORIGINS") or ""
    if args.access_control_allow_origins is not None:
        exports["AML_CORS_ORIGINS"] = args.access_control_allow_origins
    cors = tuple(o.strip() for o in cors_text.split(",")) if cors_text.strip() else ()

    # azmlinfsrv's rule: the ports come from the flags or the defaults; SERVER_PORT and
    # HEALTH_PORT are set for score.py to read, never read.
    port = _int("port", args.port, None, str(DEFAULT_PORT), 0, 65535)
    exports["SERVER_PORT"] = str(port)
    health_port = None
    if environ.get("SEPERATE_HEALTH_ENDPOINT") == "true":
        health_port = _int(
            "health_port", args.health_port, None, str(DEFAULT_HEALTH_PORT), 0, 65535
        )
    exports["HEALTH_PORT"] = str(health_port if health_port is not None else port)

    # Sent unless SERVER_VERSION_LOG_RESPONSE_ENABLED says otherwise; then only a version
    # the deployment set itself in HTTP_X_MS_SERVER_VERSION.
    version_flag = environ.get("SERVER_VERSION_LOG_RESPONSE_ENABLED")
    server_version: str | None = f"kaci-runtime/{__version__}"
    if version_flag is not None and version_flag.lower() != "true":
        server_version = environ.get("HTTP_X_MS_SERVER_VERSION") or None

    insights_on, insights_env = _app_insights(args.appinsights_instrumentation_key, environ)
    exports.update(insights_env)
    asked = _flag(environ.get("AML_APP_INSIGHTS_ENABLED"), False) or environ.get(
        "AML_APP_INSIGHTS_KEY"
    )
    if insights_on or asked or args.appinsights_instrumentation_key is not None:
        warnings.append(
            "Application Insights is not supported by kaci-runtime: nothing is sent "
            "(--appinsights_instrumentation_key, AML_APP_INSIGHTS_ENABLED and AML_APP_INSIGHTS_KEY "
            "only set what score.py reads); requests are counted in /metrics"
        )
    if setting("AZUREML_DEBUG_PORT"):
        warnings.append("AZUREML_DEBUG_PORT is ignored: kaci-runtime does not attach debugpy")

    worker_count = _int("worker_count", args.worker_count, environ.get("WORKER_COUNT"), "1", 1)
    # What else azmlinfsrv leaves in the environment for score.py.
    exports["WORKER_COUNT"] = str(worker_count)
    if "AML_APP_ROOT" not in environ:
        exports["AML_APP_ROOT"] = app_root
    if server_version is not None and (version_flag is None or version_flag.lower() == "true"):
        exports["HTTP_X_MS_SERVER_VERSION"] = server_version
    config = Config(
        entry_script=entry,
        model_dir=model_dir,
        app_root=app_root,
        host=args.host or environ.get("KACI_HOST") or "0.0.0.0",  # noqa: S104
        port=port,
        worker_count=worker_count,
        scoring_timeout_ms=_int(
            "SCORING_TIMEOUT_MS",
            args.scoring_timeout_ms,
            setting("SCORING_TIMEOUT_MS"),
            str(DEFAULT_SCORING_TIMEOUT_MS),
            1,
        ),
        max_request_bytes=_int(
            "max_request_bytes",
            args.max_request_bytes,
            environ.get("KACI_MAX_REQUEST_BYTES"),
            str(DEFAULT_MAX_REQUEST_BYTES),
            1,
        ),
        auth_keys=keys,
        fast_json=_flag(environ.get("KACI_FAST_JSON"), True),
        access_log=args.access_log or _flag(environ.get("KACI_ACCESS_LOG"), False),
        graceful_timeout_s=float(environ.get("KACI_GRACEFUL_TIMEOUT_S") or 30.0),
        server_version=server_version,
        source_dir=setting("AZUREML_SOURCE_DIRECTORY"),
        cors_origins=cors,
        health_port=health_port,
        service_name=setting("SERVICE_NAME") or "ML service",
        service_version=setting("SERVICE_VERSION") or "1.0",
        service_path_prefix=setting("SERVICE_PATH_PREFIX") or "",
        log_level=(setting("AZUREML_LOG_LEVEL") or "INFO").upper(),
        config_file=config_file,
        warnings=tuple(warnings),
        max_concurrent_requests=_optional_int(environ, "KACI_MAX_CONCURRENT_REQUESTS"),
        max_request_wait_ms=_optional_int(environ, "KACI_MAX_REQUEST_WAIT_MS"),
        token_key=token_key,
        token_audience=token_audience,
        capture=_capture(environ),
    )
    return config, exports
