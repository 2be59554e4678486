"""The runtime's settings: azmlinfsrv's flags and environment variables, plus kaci's own.

Flags win over environment variables, which win over defaults, as in azmlinfsrv.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kaci_runtime import __version__

DEFAULT_PORT = 5001
# Azure's default scoring timeout: one hour.
DEFAULT_SCORING_TIMEOUT_MS = 3_600_000
DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024


class ConfigError(ValueError):
    pass


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
    server_version: str = f"kaci-runtime/{__version__}"


def _int(name: str, text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {value}")
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kaci-runtime",
        description=(
            "Serve an Azure ML score.py (init()/run()) over HTTP: GET / (liveness), GET /ready, "
            "POST /score, GET /swagger.json, GET /metrics. Flags and environment variables "
            "follow azmlinfsrv (azureml-inference-server-http)."
        ),
        epilog=(
            "environment: AZUREML_ENTRY_SCRIPT, AZUREML_MODEL_DIR, AML_APP_ROOT, SERVER_PORT, "
            "WORKER_COUNT, SCORING_TIMEOUT_MS, SERVICE_NAME, SERVICE_VERSION, SERVICE_PATH_PREFIX; "
            "kaci's own: KACI_HOST, KACI_MAX_REQUEST_BYTES, KACI_AUTH_PRIMARY_KEY, "
            "KACI_AUTH_SECONDARY_KEY (or *_KEY_FILE), KACI_FAST_JSON=0 (standard json.loads), "
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
    p.add_argument("--version", action="version", version=f"kaci-runtime {__version__}")
    return p


def load(argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[Config, dict[str, str]]:
    """The settings, and the environment variables score.py must see (Azure sets them too)."""
    args = parser().parse_args(argv)
    exports: dict[str, str] = {}
    entry = args.entry_script or environ.get("AZUREML_ENTRY_SCRIPT") or None
    # azmlinfsrv's rule: the app root is AML_APP_ROOT, else the working directory.
    app_root = environ.get("AML_APP_ROOT") or str(Path.cwd())
    if args.entry_script:
        entry = os.path.realpath(args.entry_script)
        exports["AZUREML_ENTRY_SCRIPT"] = entry
    model_dir = args.model_dir or environ.get("AZUREML_MODEL_DIR") or None
    if args.model_dir:
        model_dir = os.path.realpath(args.model_dir)
        exports["AZUREML_MODEL_DIR"] = model_dir
    keys = tuple(k for k in (_key(environ, "PRIMARY"), _key(environ, "SECONDARY")) if k)
    config = Config(
        entry_script=entry,
        model_dir=model_dir,
        app_root=app_root,
        host=args.host or environ.get("KACI_HOST") or "0.0.0.0",  # noqa: S104
        port=_int("port", args.port or environ.get("SERVER_PORT") or str(DEFAULT_PORT), 0, 65535),
        worker_count=_int(
            "worker_count", args.worker_count or environ.get("WORKER_COUNT") or "1", 1
        ),
        scoring_timeout_ms=_int(
            "SCORING_TIMEOUT_MS",
            args.scoring_timeout_ms
            or environ.get("SCORING_TIMEOUT_MS")
            or str(DEFAULT_SCORING_TIMEOUT_MS),
            1,
        ),
        max_request_bytes=_int(
            "max_request_bytes",
            args.max_request_bytes
            or environ.get("KACI_MAX_REQUEST_BYTES")
            or str(DEFAULT_MAX_REQUEST_BYTES),
            1,
        ),
        auth_keys=keys,
        fast_json=_flag(environ.get("KACI_FAST_JSON"), True),
        access_log=args.access_log or _flag(environ.get("KACI_ACCESS_LOG"), False),
        graceful_timeout_s=float(environ.get("KACI_GRACEFUL_TIMEOUT_S") or 30.0),
    )
    return config, exports
