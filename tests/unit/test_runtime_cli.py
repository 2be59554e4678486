"""The `kaci-runtime` command as a person uses it: --help, flags, env vars, bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kaci_runtime.config import ConfigError, load


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaci_runtime", *args], capture_output=True, text=True, timeout=120
    )


def test_help_names_the_flags_and_variables() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for word in ("--entry_script", "--model_dir", "--port", "--worker_count", "AZUREML_MODEL_DIR"):
        assert word in out.stdout
    assert "KACI_FAST_JSON" in out.stdout


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("kaci-runtime")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert out.stdout.startswith("kaci-runtime ")


def test_bad_port_is_refused_with_a_reason() -> None:
    out = run_cli("--entry_script", "x.py", "--port", "99999")
    assert out.returncode == 1  # a bad flag value: azmlinfsrv's argparse exit code
    assert "port must be between 0 and 65535" in out.stderr


def test_flags_win_over_environment(tmp_path: Path) -> None:
    env = {"SERVER_PORT": "6000", "WORKER_COUNT": "3", "AZUREML_MODEL_DIR": "/env/models"}
    config, exports = load(["--port", "7000", "--model_dir", str(tmp_path)], env)
    assert config.port == 7000
    assert exports["SERVER_PORT"] == "7000"
    # azmlinfsrv never reads SERVER_PORT: without --port, the default.
    assert load([], env)[0].port == 5001
    assert config.worker_count == 3
    assert config.model_dir == str(tmp_path)
    assert exports["AZUREML_MODEL_DIR"] == str(tmp_path)


def test_environment_is_read_like_azmlinfsrv() -> None:
    env = {
        "AZUREML_ENTRY_SCRIPT": "/var/azureml-app/score.py",
        "AZUREML_MODEL_DIR": "/var/azureml-app/azureml-models/m/1",
        "AML_APP_ROOT": "/var/azureml-app",
        "SCORING_TIMEOUT_MS": "5000",
        "KACI_AUTH_PRIMARY_KEY": "k1",
        "KACI_FAST_JSON": "0",
        "KACI_MAX_REQUEST_BYTES": "1024",
    }
    config, exports = load([], env)
    assert config.entry_script == "/var/azureml-app/score.py"
    assert config.app_root == "/var/azureml-app"
    assert config.port == 5001
    assert config.scoring_timeout_ms == 5000
    assert config.auth_keys == ("k1",)
    assert config.fast_json is False
    assert config.max_request_bytes == 1024
    # What azmlinfsrv leaves for score.py to read (nothing the caller set is overwritten
    # but the ports, which come from the flags only).
    assert exports == {
        "SERVER_PORT": "5001",
        "HEALTH_PORT": "5001",
        "WORKER_COUNT": "1",
        "AML_APP_INSIGHTS_ENABLED": "false",
        "HTTP_X_MS_SERVER_VERSION": config.server_version,
    }
    assert "k1" not in repr(config)  # keys stay out of logs


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKER_COUNT": "0"}, "worker_count must be at least 1"),
        ({"SCORING_TIMEOUT_MS": "soon"}, "SCORING_TIMEOUT_MS must be an integer"),
    ],
)
def test_bad_environment_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load([], env)
    assert caught.value.exit_code == 3  # azmlinfsrv's boot error for a bad setting


def test_banner_says_where_it_listens(tmp_path: Path) -> None:
    from kaci_runtime.testing import LocalRuntime

    script = tmp_path / "score.py"
    script.write_text("def init():\n    pass\n\ndef run(raw_data):\n    return 1\n")
    with LocalRuntime(script, model_dir=tmp_path, cwd=tmp_path) as rt:
        log = rt.log()
    assert f"listening on http://127.0.0.1:{rt.port}" in log
    assert f"entry script : {script}" in log
    assert f"model dir    : {tmp_path}" in log
    assert "POST http://127.0.0.1:" in log


def test_auth_keys_from_files(tmp_path: Path) -> None:
    (tmp_path / "primary").write_text("from-file\n")
    env = {
        "KACI_AUTH_PRIMARY_KEY_FILE": str(tmp_path / "primary"),
        "KACI_AUTH_SECONDARY_KEY": "from-env",
    }
    config, _ = load([], env)
    assert config.auth_keys == ("from-file", "from-env")
    with pytest.raises(ConfigError, match="cannot read"):
        load([], {"KACI_AUTH_SECONDARY_KEY_FILE": str(tmp_path / "missing")})
