"""The runtime's small parts on their own: request ids, CORS, settings, AMLResponse,
the model data collector and the sklearn.externals.joblib alias."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kaci_runtime.config import ConfigError, load
from kaci_runtime.cors import Cors
from kaci_runtime.modeldata import CORRELATION_FIELDS, NO_REQUEST_ID, ModelDataCollector
from kaci_runtime.requestids import (
    CLIENT_ID_TOO_LONG,
    REQUEST_ID_TOO_LONG,
    IdMaker,
    request_ids,
)

# -- request ids ---------------------------------------------------------------------------------


def watched(**given: str) -> list[bytes | None]:
    slots = {"request": 3, "legacy": 4, "client": 5, "trace": 7}
    out: list[bytes | None] = [None] * 8
    for name, value in given.items():
        out[slots[name]] = value.encode()
    return out


def as_dict(lines: list[bytes]) -> dict[str, str]:
    text = b"".join(lines).decode()
    return dict(line.split(": ", 1) for line in text.split("\r\n") if line)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"request": "r"}, {"x-request-id": "r", "x-ms-request-id": "r"}),
        (
            {"legacy": "l"},
            {"x-request-id": "G", "x-ms-request-id": "l", "x-ms-client-request-id": "l"},
        ),
        (
            {"client": "c"},
            {"x-request-id": "G", "x-ms-request-id": "c", "x-ms-client-request-id": "c"},
        ),
        (
            {"request": "r", "legacy": "l", "client": "c"},
            {"x-request-id": "r", "x-ms-request-id": "l", "x-ms-client-request-id": "c"},
        ),
        (
            {"request": "r", "trace": "t"},
            {"x-request-id": "r", "x-ms-request-id": "r", "traceid": "t"},
        ),
    ],
)
def test_request_ids_follow_azure(given: dict[str, str], expected: dict[str, str]) -> None:
    lines, problem = request_ids(watched(**given), IdMaker())
    got = as_dict(lines)
    assert problem is None
    if expected["x-request-id"] == "G":
        expected = {**expected, "x-request-id": got["x-request-id"]}
        assert len(got["x-request-id"]) == 36
    assert got == expected


def test_over_long_request_id_keeps_no_id_but_the_trace() -> None:
    lines, problem = request_ids(watched(request="a" * 101, trace="t"), IdMaker())
    assert problem == REQUEST_ID_TOO_LONG == "x-request-id must not exceed 100 characters"
    assert as_dict(lines) == {"traceid": "t"}


@pytest.mark.parametrize("which", ["legacy", "client"])
def test_over_long_client_id_keeps_the_request_id(which: str) -> None:
    lines, problem = request_ids(watched(request="kept", **{which: "b" * 101}), IdMaker())
    assert problem == CLIENT_ID_TOO_LONG
    assert as_dict(lines) == {"x-request-id": "kept"}


def test_generated_ids_are_unique_and_uuid_shaped() -> None:
    maker = IdMaker()
    ids = {maker.new() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 36 and i.count(b"-") == 4 for i in ids)


# -- CORS ----------------------------------------------------------------------------------------


def cors_headers(origins: tuple[str, ...], method: bytes = b"POST", **headers: str) -> dict:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    lines = Cors(origins).headers(method, raw)
    out: dict[str, list[str]] = {}
    for line in lines:
        name, value = line.decode().rstrip("\r\n").split(": ", 1)
        out.setdefault(name, []).append(value)
    return out


def test_cors_echoes_a_matching_origin_and_ignores_others() -> None:
    two = ("https://a.example", "https://b.example")
    assert cors_headers(two, Origin="https://B.example") == {
        "Access-Control-Allow-Origin": ["https://B.example"],
        "Vary": ["Origin"],
    }
    assert cors_headers(two, Origin="https://c.example") == {}
    # Without Origin, flask-cors sends the first allowed origin.
    assert cors_headers(two)["Access-Control-Allow-Origin"] == ["https://a.example"]


def test_cors_single_origin_has_no_vary_and_patterns_match() -> None:
    assert cors_headers(("https://a.example",), Origin="https://a.example") == {
        "Access-Control-Allow-Origin": ["https://a.example"]
    }
    pattern = (r"https://.*\.example\.org",)
    got = cors_headers(pattern, Origin="https://x.example.org")
    assert got == {"Access-Control-Allow-Origin": ["https://x.example.org"], "Vary": ["Origin"]}
    assert cors_headers(("*",)) == {"Access-Control-Allow-Origin": ["*"]}


def test_cors_preflight() -> None:
    got = cors_headers(
        ("https://a.example",),
        b"OPTIONS",
        Origin="https://a.example",
        Access_Control_Request_Method="post",
        Access_Control_Request_Headers="X-B, x-a",
    )
    assert got == {
        "Access-Control-Allow-Origin": ["https://a.example"],
        "Access-Control-Allow-Headers": ["X-B, x-a"],
        "Access-Control-Allow-Methods": ["GET, POST"],
    }
    denied = cors_headers(
        ("https://a.example",),
        b"OPTIONS",
        Origin="https://a.example",
        Access_Control_Request_Method="DELETE",
    )
    assert "Access-Control-Allow-Methods" not in denied


# -- settings ------------------------------------------------------------------------------------


def test_config_file_settings_under_environment_and_flags(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text("")
    settings = {
        "AZUREML_ENTRY_SCRIPT": "score.py",
        "SCORING_TIMEOUT_MS": 1234,
        "SERVICE_NAME": "from-file",
        "AZUREML_SOURCE_DIRECTORY": "src",
        "NOT_A_SETTING": 1,
    }
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    env = {"AML_APP_ROOT": str(tmp_path), "SERVICE_NAME": "from-env"}
    config, exports = load(["--config_file", str(path)], env)
    assert config.entry_script == "score.py"
    assert config.scoring_timeout_ms == 1234
    assert config.service_name == "from-env"
    assert config.source_dir == "src"
    assert config.config_file == str(path)
    assert exports["AZUREML_CONFIG_FILE"] == str(path)
    assert any("NOT_A_SETTING" in w for w in config.warnings)
    flagged, _ = load(["--config_file", str(path), "--scoring_timeout_ms", "9"], env)
    assert flagged.scoring_timeout_ms == 9


def test_config_json_in_the_app_root_is_found(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"SERVICE_VERSION": "4.5"}')
    config, _ = load([], {"AML_APP_ROOT": str(tmp_path)})
    assert config.service_version == "4.5"
    (tmp_path / "config.json").write_text("")  # empty: ignored, as azmlinfsrv does
    config, _ = load([], {"AML_APP_ROOT": str(tmp_path)})
    assert config.service_version == "1.0"


def test_bad_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="config file"):
        load(["--config_file", str(path)], {"AML_APP_ROOT": str(tmp_path)})
    with pytest.raises(ConfigError, match="not found"):
        load(["--config_file", str(tmp_path / "missing.json")], {"AML_APP_ROOT": str(tmp_path)})


def test_azmlinfsrv_options(tmp_path: Path) -> None:
    env = {
        "AML_APP_ROOT": str(tmp_path),
        "AML_CORS_ORIGINS": "https://a.example, https://b.example",
        "SEPERATE_HEALTH_ENDPOINT": "true",
        "HEALTH_PORT": "5055",
        "SERVER_VERSION_LOG_RESPONSE_ENABLED": "false",
        "AML_APP_INSIGHTS_ENABLED": "true",
    }
    config, exports = load([], env)
    assert config.cors_origins == ("https://a.example", "https://b.example")
    # HEALTH_PORT is set for score.py, not read: --health_port or 5000, as azmlinfsrv.
    assert config.health_port == 5000
    assert exports["HEALTH_PORT"] == "5000"
    assert exports["AML_APP_INSIGHTS_ENABLED"] == "false"  # no key: off
    assert config.server_version is None
    assert any("Application Insights" in w for w in config.warnings)
    config, exports = load(
        ["--health_port", "6001", "--access_control_allow_origins", "x.example"],
        {**env, "HTTP_X_MS_SERVER_VERSION": "mine/1"},
    )
    assert config.health_port == 6001
    assert config.cors_origins == ("x.example",)
    assert exports["AML_CORS_ORIGINS"] == "x.example"
    assert config.server_version == "mine/1"
    plain, _ = load([], {"AML_APP_ROOT": str(tmp_path)})
    assert plain.health_port is None
    assert plain.cors_origins == ()
    assert plain.server_version is not None
    assert plain.server_version.startswith("kaci-runtime/")
    assert plain.warnings == ()


def test_unknown_flag_exits_1_with_the_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kaci_runtime", "--no_such_flag"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "unrecognized arguments: --no_such_flag" in out.stderr
    assert "--entry_script" in out.stdout


def test_appinsights_settings_are_accepted_with_a_warning(tmp_path: Path) -> None:
    key = "0b5e5c1e-6a1e-4f4e-9d8a-0d7c2b7e9f10"
    config, exports = load(["--appinsights_instrumentation_key", "not-a-uuid", "--rest"], {})
    assert any("Application Insights is not supported" in w for w in config.warnings)
    # azmlinfsrv's rules for what score.py then reads: a key that is no UUID turns it off.
    assert exports["AML_APP_INSIGHTS_ENABLED"] == "false"
    assert exports["AML_APP_INSIGHTS_KEY"] == "not-a-uuid"
    _, exports = load(["--appinsights_instrumentation_key", key], {})
    assert exports["AML_APP_INSIGHTS_ENABLED"] == "true"
    env = {"AML_APP_INSIGHTS_ENABLED": "true", "AML_APP_INSIGHTS_KEY": key}
    config, exports = load([], env)
    assert exports["AML_APP_INSIGHTS_ENABLED"] == "true"
    assert config.warnings
    _, exports = load([], {**env, "AML_APP_INSIGHTS_ENABLED": "yes"})
    assert exports["AML_APP_INSIGHTS_ENABLED"] == "false"


# -- AMLResponse ---------------------------------------------------------------------------------


def test_aml_response_follows_azure() -> None:
    from kaci_runtime.amlhttp import AMLResponse

    resp = AMLResponse("hi", 200, {"X-List": "a, b", "Content-Type": "text/csv"})
    assert resp.headers.getlist("X-List") == ["a", "b"]
    assert resp.headers.getlist("Content-Type") == ["text/csv"]
    assert resp.headers["x-ms-run-function-failed"] == "False"
    assert resp.get_data() == b"hi"
    resp.headers["X-Set"] = "later"
    resp.mimetype = "text/plain"
    assert resp.headers["X-Set"] == "later"
    assert resp.headers["Content-Type"].startswith("text/plain")
    plain = AMLResponse("x", 200)
    assert plain.headers["Content-Type"] == "text/html; charset=utf-8"
    as_json = AMLResponse({"a": 1}, 201, json_str=True, run_function_failed=True)
    assert json.loads(as_json.get_data()) == {"a": 1}
    assert as_json.mimetype == "application/json"
    assert as_json.headers["x-ms-run-function-failed"] == "True"
    assert AMLResponse(None, 200).get_data() == b"{}"
    streamed = AMLResponse(iter(["a", "b"]), 200)
    assert streamed.is_streamed
    assert list(streamed.iter_encoded()) == [b"a", b"b"]


def test_rawhttp_request_is_werkzeug_with_flask_limits() -> None:
    from kaci_runtime.amlhttp import AMLRequest, build_request

    body = b"a=1&a=2&b=x"
    req = build_request(
        "POST",
        "/score",
        "n=5&word=w",
        [("Content-Type", "application/x-www-form-urlencoded"), ("X-A", "1"), ("X-A", "2")],
        body,
        ("10.0.0.9", 4242),
        ("127.0.0.1", 5001),
        False,
    )
    assert not isinstance(req, AMLRequest)  # Azure passes Flask's request, not AMLRequest
    assert req.args.get("n", type=int) == 5
    assert req.args.get("word", type=int) is None
    assert req.form.getlist("a") == ["1", "2"]
    assert req.values.get("b") == "x"
    assert ("X-A", "1,2") in list(req.headers)
    assert req.remote_addr == "10.0.0.9"
    assert req.max_form_memory_size == 500_000


# -- ModelDataCollector ---------------------------------------------------------------------------


def test_model_data_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    inputs = ModelDataCollector("m", designation="inputs", feature_names=["f1", "f2"])
    preds = ModelDataCollector("m", designation="predictions", feature_names=["p"])
    correlations = inputs.collect([[1, 2], [3, 4]], user_correlation_id="u1")
    assert correlations is not None
    preds.collect(preds.add_correlations([7], correlations))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    first, _, pred = lines
    assert first["f1"] == 1
    assert first["f2"] == 2
    assert first["$aml_dc_designation"] == "inputs"
    assert set(CORRELATION_FIELDS) <= set(first)
    assert first["$aml_dc_correlation_id"].startswith("u1-")
    assert first["$aml_request_id"] == NO_REQUEST_ID
    assert first["$aml_model_name"] == "m"
    assert pred["p"] == 7
    assert pred["$aml_dc_correlation_id"] == first["$aml_dc_correlation_id"]


def test_model_data_numpy_pandas_and_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import pandas as pd

    monkeypatch.setenv("KACI_MODEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SERVICE_NAME", "svc")
    dc = ModelDataCollector("model", designation="inputs", model_version="3")
    dc.collect(np.array([[1.5, 2.5]]))
    dc.collect(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) == 1
    assert files[0].relative_to(tmp_path).parts[:7] == (
        "default",
        "default",
        "default",
        "svc",
        "model",
        "3",
        "inputs",
    )
    assert files[0].name == "inputs.jsonl"
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert rows[0]["data"] == [1.5, 2.5]
    assert [(r["a"], r["b"]) for r in rows[1:]] == [(1, "x"), (2, "y")]
    assert all(r["$aml_service_name"] == "svc" for r in rows)


def test_model_data_off_and_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KACI_MODEL_DATA", "off")
    dc = ModelDataCollector("m", designation="inputs")
    assert dc.collect([1]) is not None  # correlations still come back
    assert capsys.readouterr().out == ""
    monkeypatch.delenv("KACI_MODEL_DATA")
    with pytest.raises(TypeError, match="collect failed"):
        ModelDataCollector("m").collect("not tabular")


# -- sklearn.externals.joblib ---------------------------------------------------------------------


def test_sklearn_externals_joblib_alias_warns_once() -> None:
    code = (
        "import logging; logging.basicConfig()\n"
        "from kaci_runtime import legacyimports; legacyimports.install(); legacyimports.install()\n"
        "from sklearn.externals import joblib\n"
        "import sklearn.externals.joblib as again\n"
        "import joblib as real\n"
        "assert joblib is real and again is real\n"
        "assert real.__spec__.name == 'joblib'\n"
        "from sklearn.externals.joblib import dump, load\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert out.stderr.count("sklearn.externals.joblib") == 1
