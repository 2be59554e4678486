"""`kaci-runtime` / `python -m kaci_runtime`: serve a score.py like azmlinfsrv does."""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence

from kaci_runtime import __version__
from kaci_runtime.config import Config, ConfigError, load


def _listen(config: Config, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _auth(config: Config) -> str:
    if config.token_key is not None:
        return f"tokens for {config.token_audience}"
    return "keys" if config.auth_keys else "off"


def _banner(config: Config, port: int, shim: bool, health_port: int | None) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host  # noqa: S104
    lines = [
        f"kaci-runtime {__version__} listening on http://{config.host}:{port} "
        f"(pid {os.getpid()}, workers: {config.worker_count})",
        f"  entry script : {config.entry_script or 'main.py on the path'}",
        f"  model dir    : {config.model_dir or '(AZUREML_MODEL_DIR not set)'}",
        f"  score        : POST http://{host}:{port}/score   (ready when GET /ready says 200)",
        "  also         : GET / (liveness), /ready, /swagger.json, /metrics",
        f"  timeout      : {config.scoring_timeout_ms} ms per run(); max body "
        f"{config.max_request_bytes} bytes; auth {_auth(config)}; "
        f"fast json.loads {'on' if config.fast_json else 'off'}"
        + ("; azureml.core shim in use" if shim else ""),
    ]
    if config.limited:
        lines.append(
            f"  limits       : {config.max_concurrent_requests or 'one per worker'} run() at once"
            f" in this container; wait at most "
            f"{config.max_request_wait_ms if config.max_request_wait_ms else 'unlimited'} ms"
            " (then 503); scoring timeout answered 504"
        )
    if health_port is not None:
        lines.append(
            f"  health port  : http://{host}:{health_port}/ (SEPERATE_HEALTH_ENDPOINT: "
            "the same routes on a second port)"
        )
    if config.cors_origins:
        lines.append(f"  CORS         : {', '.join(config.cors_origins)}")
    if config.config_file:
        lines.append(f"  config file  : {config.config_file}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("AZUREML_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # print() in score.py shows up in the Pod's log right away.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        config, exports = load(argv, os.environ)
    except ConfigError as ex:
        print(f"kaci-runtime: {ex}", file=sys.stderr)
        return ex.exit_code
    logging.getLogger().setLevel(config.log_level)
    for warning in config.warnings:
        logging.getLogger("kaci_runtime").warning("%s", warning)
    os.environ.update(exports)
    if config.worker_count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before prometheus_client is imported (in the server module).
        try:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kaci-metrics-")
        except OSError as ex:  # a read-only filesystem without a writable /tmp
            print(f"kaci-runtime: /metrics shows one worker at a time: {ex}", file=sys.stderr)

    from kaci_runtime import shim
    from kaci_runtime.server import Worker

    shim_used = shim.install()
    socks: list[socket.socket] = []
    for port in (config.port, config.health_port):
        if port is None:
            continue
        try:
            socks.append(_listen(config, port))
        except OSError as ex:
            print(f"kaci-runtime: cannot listen on {config.host}:{port}: {ex}", file=sys.stderr)
            return 2
    port = socks[0].getsockname()[1]
    health_port = socks[1].getsockname()[1] if len(socks) > 1 else None
    print(_banner(config, port, shim_used, health_port), file=sys.stderr, flush=True)
    if config.worker_count == 1:
        code = Worker(config, socks).serve()
    else:
        from kaci_runtime.workers import prefork

        # One count of run() calls for the whole container, made before the fork.
        slots = None
        if config.max_concurrent_requests is not None:
            import multiprocessing

            slots = multiprocessing.get_context("fork").BoundedSemaphore(
                config.max_concurrent_requests
            )
        code = prefork(
            config.worker_count,
            socks,
            lambda i, fd: Worker(config, socks, i, fd, slots).serve(),
        )
    # Threads the score script started must not keep a stopped server alive.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
