"""The `kaci` CLI: parsing, output formats, exit codes and one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kaci.azureml.exceptions import (
    ClusterUnreachableException,
    FailedStateException,
    ModelNotFoundException,
    UserErrorException,
    WaitTimeoutException,
    WebserviceException,
)
from kaci.cli import exitcodes, output
from kaci.cli.app import build_parser, main, workspace_from_args

ROWS = [
    {
        "name": "aci-mnist-1",
        "state": "Healthy",
        "cpuCores": 1.0,
        "memoryGb": 0.5,
        "authEnabled": False,
        "imageId": "aci-mnist-1:1",
        "scoringUri": "http://x/score",
    },
    {
        "name": "aci-mnist-2",
        "state": "Failed",
        "cpuCores": 0.1,
        "memoryGb": 1.5,
        "authEnabled": True,
        "imageId": None,
        "scoringUri": None,
    },
]


def test_table_has_one_row_per_object() -> None:
    text = output.render(ROWS, output.WEBSERVICE_COLUMNS, "table")
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "CPU", "MEMORY_GB", "AUTH", "IMAGE", "SCORING_URI"]
    assert lines[1].split() == [
        "aci-mnist-1",
        "Healthy",
        "1",
        "0.5",
        "no",
        "aci-mnist-1:1",
        "http://x/score",
    ]
    assert lines[2].split() == ["aci-mnist-2", "Failed", "0.1", "1.5", "yes", "-", "-"]


def test_json_and_yaml_round_trip() -> None:
    assert json.loads(output.render(ROWS, output.WEBSERVICE_COLUMNS, "json")) == ROWS
    assert yaml.safe_load(output.render(ROWS[0], output.WEBSERVICE_COLUMNS, "yaml")) == ROWS[0]
    with pytest.raises(ValueError, match="unknown output format"):
        output.render(ROWS, output.WEBSERVICE_COLUMNS, "xml")


def test_cells() -> None:
    assert output.cell({"b": "2", "a": "1"}) == "a=1,b=2"
    assert output.cell(["m:1", "n:2"]) == "m:1,n:2"
    assert output.cell("sha256:" + "a" * 64) == "sha256:aaaaaaaaaaaa"
    assert output.cell(None) == "-"


def test_pairs_and_refs() -> None:
    assert output.parse_pairs(["a=1", "b=x=y"], "--tag") == {"a": "1", "b": "x=y"}
    assert output.parse_pairs(None, "--tag") is None
    with pytest.raises(ValueError, match="key=value"):
        output.parse_pairs(["novalue"], "--tag")
    assert output.parse_ref("sklearn_mnist:2") == ("sklearn_mnist", 2)
    assert output.parse_ref("myimage1") == ("myimage1", None)
    with pytest.raises(ValueError, match="NAME:VERSION"):
        output.parse_ref("m:latest")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ModelNotFoundException("x"), 3),
        (WaitTimeoutException("x"), 4),
        (ClusterUnreachableException("x"), 5),
        (UserErrorException("x"), 2),
        (ValueError("x"), 2),
        (FailedStateException("x"), 1),
        (WebserviceException("x"), 1),
        (FileNotFoundError("x"), 2),
        (KeyboardInterrupt(), 130),
    ],
)
def test_exit_codes(exc: BaseException, code: int) -> None:
    assert exitcodes.exit_code_for(exc) == code


def test_one_line_errors() -> None:
    assert exitcodes.one_line(WebserviceException("a\n  b\tc")) == "a b c"


def test_parser_covers_every_command() -> None:
    p = build_parser()
    for argv in (
        ["model", "register", "--name", "m", "--path", "m.pkl"],
        ["model", "list", "--latest"],
        ["model", "show", "m:1"],
        ["model", "download", "m", "--target-dir", "out"],
        ["model", "delete", "m"],
        ["image", "create", "img", "--model", "m:1", "--script", "score.py"],
        ["image", "list"],
        ["image", "show", "img"],
        ["image", "logs", "img"],
        ["image", "delete", "img"],
        ["webservice", "deploy", "svc", "--image", "img:1", "--cpu-cores", "1"],
        ["webservice", "list"],
        ["webservice", "show", "svc"],
        ["webservice", "run", "svc", "--data", "{}"],
        ["webservice", "logs", "svc"],
        ["webservice", "keys", "svc"],
        ["webservice", "regen-key", "svc", "--key", "Primary"],
        ["ws", "delete", "svc"],
        ["service", "get-token", "svc"],
    ):
        args = p.parse_args(["-o", "json", *argv])
        assert callable(args.func), argv


def _run(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    err = capsys.readouterr().err
    return code, err


def test_usage_errors_exit_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run(["model", "frobnicate"], tmp_path, capsys)
    assert code == 2
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    code, err = _run(["webservice", "deploy", "svc"], tmp_path, capsys)
    assert code == 2
    assert "exactly one of --model-file, --model or --image" in err
    code, err = _run(
        ["webservice", "deploy", "svc", "--image", "i", "--cpu-cores", "-1"], tmp_path, capsys
    )
    assert code == 1
    assert "cpu_cores must be positive" in err


def test_unreachable_cluster_exits_5_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kube = tmp_path / "kubeconfig"
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    kube.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    code, err = _run(["--kubeconfig", str(kube), "model", "list"], tmp_path, capsys)
    assert code == 5, err
    assert err.startswith("error: list models: cannot reach the Kubernetes API server")
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_kubeconfig_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run(
        ["--kubeconfig", str(tmp_path / "none"), "webservice", "list"], tmp_path, capsys
    )
    assert code == 5
    assert "kubeconfig" in err


def test_workspace_flags_override_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(
        json.dumps({"context": "from-file", "namespace": "file-ns", "registry": "r:1"})
    )
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["-n", "flag-ns", "model", "list"])
    ws = workspace_from_args(args)
    assert (ws.context, ws.namespace, ws.registry) == ("from-file", "flag-ns", "r:1")


def test_console_script_help_exits_0() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "kaci.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0
    assert "4 timeout" in res.stdout


def test_sdk_prints_go_to_stderr_so_stdout_stays_parseable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kube = tmp_path / "kubeconfig"
    kube.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    (tmp_path / "m.pkl").write_bytes(b"x")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "kaci.cli",
            "--kubeconfig",
            str(kube),
            "-o",
            "json",
            "model",
            "register",
            "--name",
            "m",
            "--path",
            "m.pkl",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert res.returncode == 5
    assert res.stdout == ""  # Azure's "Registering model m" went to stderr
    assert res.stderr.splitlines()[0] == "Registering model m"
