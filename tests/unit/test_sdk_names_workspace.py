"""Names, ids and the workspace config (pure parts of kaci.azureml)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kaci.azureml._names import content_name, model_object_name, split_id
from kaci.azureml.core.workspace import (
    Workspace,
    find_config_file,
    parse_config,
    registry_is_insecure,
)
from kaci.azureml.exceptions import KaciCompatibilityWarning, UserErrorException

K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def test_valid_kubernetes_names_are_kept() -> None:
    assert model_object_name("mnist") == "mnist"
    assert model_object_name("my-model.v2") == "my-model.v2"


def test_azure_names_get_a_clean_name_with_a_hash() -> None:
    name = model_object_name("sklearn_mnist")
    assert name.startswith("sklearn-mnist-")
    assert K8S_NAME.match(name)
    # Two Azure names that clean to the same text stay apart.
    assert model_object_name("A_b") != model_object_name("a-b")


@given(st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$", fullmatch=True))
def test_every_azure_model_name_maps_to_a_kubernetes_name(name: str) -> None:
    obj = model_object_name(name)
    assert len(obj) <= 63
    assert K8S_NAME.match(obj), obj


@pytest.mark.parametrize("bad", ["", "-x", "a b", "x" * 256, "é"])
def test_bad_model_names_are_refused(bad: str) -> None:
    with pytest.raises(UserErrorException):
        model_object_name(bad)


def test_split_id() -> None:
    assert split_id("sklearn_mnist:3") == ("sklearn_mnist", 3)
    assert split_id("sklearn_mnist") == ("sklearn_mnist", None)
    with pytest.raises(UserErrorException):
        split_id("x:latest")


def test_content_name_is_short_and_changes_with_digest() -> None:
    a = content_name("m" * 80, "sha256:" + "a" * 64)
    b = content_name("m" * 80, "sha256:" + "b" * 64)
    assert len(a) <= 63
    assert a != b
    assert a.endswith("aaaaaaaaaa")


def test_parse_kaci_config() -> None:
    cfg = parse_config({"context": "kaci-local", "namespace": "ml", "registry": "r:5000"})
    assert (cfg.context, cfg.namespace, cfg.registry, cfg.ignored) == (
        "kaci-local",
        "ml",
        "r:5000",
        (),
    )


def test_parse_azure_config_uses_workspace_name_and_reports_the_rest() -> None:
    cfg = parse_config(
        {"subscription_id": "s", "resource_group": "rg", "workspace_name": "team-ws"}
    )
    assert cfg.namespace == "team-ws"
    assert cfg.ignored == ("resource_group", "subscription_id")


@pytest.mark.parametrize(
    "data", [[], {"namespace": 3}, {"registry_insecure": "yes"}, {"context": ["a"]}]
)
def test_bad_config_is_refused(data: object) -> None:
    with pytest.raises(UserErrorException):
        parse_config(data)  # type: ignore[arg-type]


def test_config_search_order_like_azure(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "config.json").write_text("{}")
    assert find_config_file(deep, None) == tmp_path / "config.json"
    (tmp_path / "a" / "aml_config").mkdir()
    (tmp_path / "a" / "aml_config" / "config.json").write_text("{}")
    assert find_config_file(deep, None) == tmp_path / "a" / "aml_config" / "config.json"
    (deep / ".azureml").mkdir()
    (deep / ".azureml" / "config.json").write_text("{}")
    assert find_config_file(deep, None) == deep / ".azureml" / "config.json"
    # .azureml wins over a plain config.json in the same folder
    (deep / "config.json").write_text("{}")
    assert find_config_file(deep, None) == deep / ".azureml" / "config.json"


def test_missing_config_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(UserErrorException, match="could not be found"):
        find_config_file(tmp_path, "nothere.json")


def test_write_then_from_config_round_trip(tmp_path: Path) -> None:
    ws = Workspace(context="kaci-local", namespace="ml", kubeconfig="/k/config", registry="r:1")
    path = ws.write_config(path=str(tmp_path / ".azureml"))
    back = Workspace.from_config(path=tmp_path)
    assert Path(path) == tmp_path / ".azureml" / "config.json"
    assert (back.context, back.namespace, back.kubeconfig, back.registry) == (
        "kaci-local",
        "ml",
        "/k/config",
        "r:1",
    )


def test_relative_kubeconfig_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"context": "c", "namespace": "n", "kubeconfig": "kube/config"})
    )
    ws = Workspace.from_config(path=str(tmp_path / "config.json"))
    assert ws.kubeconfig == str(tmp_path / "kube" / "config")


def test_azure_positional_arguments_warn_and_name_the_namespace() -> None:
    with pytest.warns(KaciCompatibilityWarning, match="subscription_id"):
        ws = Workspace("sub", "rg", "team-ws", context="c")
    assert ws.namespace == "team-ws"


def test_namespace_and_context_default_from_kubeconfig(tmp_path: Path) -> None:
    kube = tmp_path / "kubeconfig"
    kube.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: two\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts:\n- {name: one, context: {cluster: c, user: u}}\n"
        "- {name: two, context: {cluster: c, user: u, namespace: team}}\n"
    )
    ws = Workspace(kubeconfig=str(kube))
    assert (ws.context, ws.namespace) == ("two", "team")
    assert Workspace(kubeconfig=str(kube), context="one").namespace == "default"


@pytest.mark.parametrize(
    ("registry", "explicit", "insecure"),
    [
        ("127.0.0.1:5000", None, True),
        ("localhost:5000/prefix", None, True),
        ("registry.example:443", None, False),
        ("registry.example", True, True),
        ("127.0.0.1:5000", False, False),
    ],
)
def test_registry_plain_http_only_on_loopback(
    registry: str, explicit: bool | None, insecure: bool
) -> None:
    assert registry_is_insecure(registry, explicit) is insecure
