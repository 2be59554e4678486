"""The Helm chart, rendered by the real `helm` binary (lint, template, schema).

No cluster is needed: `helm template` renders offline. The rendered manifests
are checked for the properties the chart promises (secure defaults, RBAC scope,
settings wiring, names cut at 63 characters); the cluster tier then
server-side dry-runs the same renders against the real API server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from kaci.operator import kopf_settings, parse_args
from kaci.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kaci"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
LONGEST_RELEASE = "r" * 53  # Helm refuses release names longer than 53 characters

Manifest = dict[str, Any]


def helm() -> str:
    path = shutil.which("helm")
    if path is None:
        pytest.fail("helm is not on PATH: `make cluster` puts it in .cluster/bin")
    return path


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False)


def render(*args: str, release: str = "kaci") -> list[Manifest]:
    proc = run_helm("template", release, str(CHART), "--namespace", "kaci-system", *args)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def deployment(docs: list[Manifest]) -> Manifest:
    """The operator's Deployment (buildkitd has one of its own: buildkitd_deployment)."""
    (dep,) = [d for d in of_kind(docs, "Deployment") if _component(d) == "operator"]
    return dep


def buildkitd_deployment(docs: list[Manifest]) -> Manifest:
    (dep,) = [d for d in of_kind(docs, "Deployment") if _component(d) == "builder"]
    return dep


def _component(dep: Manifest) -> str:
    labels: dict[str, str] = dep["spec"]["template"]["metadata"]["labels"]
    return labels["app.kubernetes.io/component"]


def container(docs: list[Manifest]) -> Manifest:
    containers: list[Manifest] = deployment(docs)["spec"]["template"]["spec"]["containers"]
    (ctr,) = containers
    return ctr


def env_of(docs: list[Manifest]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(docs)["env"]}


def settings_from(env: dict[str, str]) -> Settings:
    """The operator's settings object read, as the operator reads it, from the KACI_*
    variables the chart sets (and only those: JSON values parsed as from the env)."""
    fields = {f"KACI_{name.upper()}" for name in Settings.model_fields}
    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k in fields}, clear=True):
        return Settings()


def test_lint_default_and_every_ci_values_file() -> None:
    for extra in [[], *(["-f", str(f)] for f in CI_VALUES)]:
        proc = run_helm("lint", str(CHART), "--strict", *extra)
        assert proc.returncode == 0, f"{extra}: {proc.stdout}{proc.stderr}"


def test_ci_matrix_covers_the_promised_cases() -> None:
    names = {f.stem for f in CI_VALUES}
    assert {
        "namespaced-values",
        "tcp-docker-values",
        "pull-secret-values",
        "metrics-values",
        "custom-values",
        "local-values",
        "long-names-values",
        "local-docker-values",
        "peering-values",
        "standalone-values",
    } <= names


def test_default_render_has_secure_defaults() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",  # buildkitd.toml
        "Deployment",  # the operator
        "Deployment",  # buildkitd
        "PersistentVolumeClaim",  # buildkitd's cache
        "Secret",  # buildkitd's server certificate
        "Secret",  # the operator's client certificate
        "Service",  # buildkitd
        "Service",  # the operator's /metrics
        "ServiceAccount",
    ]
    dep = deployment(docs)
    assert dep["spec"]["replicas"] == 1
    # Peering by default: a new Pod waits beside the old one, which acts until it exits.
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctr = container(docs)
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    assert ctr["securityContext"]["allowPrivilegeEscalation"] is False
    assert ctr["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # Every namespace (no --namespace), peering through the release's ClusterKopfPeering,
    # named for the release and its namespace (cluster-scoped: see the collision test).
    assert ctr["args"] == [
        "--liveness=http://0.0.0.0:8080/healthz",
        "--peering=kaci-kaci-system",
    ]
    (peering,) = of_kind(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "kaci-kaci-system"
    # The chart's buildkitd over mTLS: nothing of the node is mounted (no hostPath),
    # only the client certificate.
    mounts = {m["name"]: m for m in ctr["volumeMounts"]}
    assert {n: m["mountPath"] for n, m in mounts.items()} == {
        "tmp": "/tmp",
        "builder-tls": "/var/run/kaci/buildkit-client",
    }
    assert mounts["builder-tls"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert not any("hostPath" in v for v in pod["volumes"])
    assert volumes["builder-tls"]["secret"]["secretName"] == "kaci-buildkit-client-tls"
    env = env_of(docs)
    assert env["KACI_BUILDER"] == "buildkit"
    assert env["KACI_BUILDKIT_ADDR"] == "tcp://kaci-buildkitd.kaci-system.svc.cluster.local:1234"
    assert env["KACI_BUILDKIT_TLS_SERVER_NAME"] == "kaci-buildkitd.kaci-system.svc.cluster.local"
    assert env["KACI_BUILDKIT_TLS_CA"] == "/var/run/kaci/buildkit-client/ca.crt"
    assert env["KACI_BUILDKIT_TLS_CERT"] == "/var/run/kaci/buildkit-client/tls.crt"
    assert env["KACI_BUILDKIT_TLS_KEY"] == "/var/run/kaci/buildkit-client/tls.key"
    assert "KACI_DOCKER_HOST" not in env
    assert "emptyDir" in volumes["tmp"]
    assert ctr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_rendered_environment_is_a_valid_operator_settings_object() -> None:
    """Every KACI_* variable the chart sets is a Settings field, with a value it accepts."""
    for extra in [[], *(["-f", str(f)] for f in CI_VALUES)]:
        env = {k: v for k, v in env_of(render(*extra)).items() if k.startswith("KACI_")}
        fields = {f"KACI_{name.upper()}" for name in Settings.model_fields}
        unknown = set(env) - fields - {"KACI_EXAMPLE_SETTING"}  # custom-values' extraEnv
        assert not unknown, f"{extra}: not operator settings: {unknown}"
        assert settings_from(env).registry


def test_local_values_wire_the_air_gapped_build_settings() -> None:
    docs = render("-f", str(CHART / "ci" / "local-values.yaml"))
    env = env_of(docs)
    settings = settings_from(env)
    # buildkitd (a Pod) reaches the host's registry on the node address; the kubelet
    # (on the host) pulls the same registry on 127.0.0.1.
    assert settings.default_base_image == "10.88.0.1:5000/kaci/python:3.11"
    assert settings.pip_find_links == "/wheels"
    assert settings.pip_no_index is True
    assert settings.registry == "10.88.0.1:5000"
    assert env["KACI_REGISTRY_PULL"] == "127.0.0.1:5000"
    assert settings.registry_insecure is True
    assert env["KACI_BUILDER"] == "buildkit"
    (config,) = of_kind(docs, "ConfigMap")
    assert '[registry."10.88.0.1:5000"]\n  http = true' in config["data"]["buildkitd.toml"]
    # No StorageClass on the local cluster: the cache is an emptyDir.
    assert not of_kind(docs, "PersistentVolumeClaim")
    volumes = buildkitd_deployment(docs)["spec"]["template"]["spec"]["volumes"]
    (cache,) = [v for v in volumes if v["name"] == "cache"]
    assert cache["emptyDir"] == {"sizeLimit": "10Gi"}


def test_local_docker_values_mount_the_engine_and_run_no_buildkitd() -> None:
    docs = render("-f", str(CHART / "ci" / "local-docker-values.yaml"))
    settings = settings_from(env_of(docs))
    assert env_of(docs)["KACI_BUILDER"] == "docker"
    assert settings.registry == "127.0.0.1:5000"
    assert settings.default_base_image == "127.0.0.1:5000/kaci/python:3.11"
    # The node's /var/run/docker.sock, through its folder's mount.
    assert settings.docker_host == "unix:///var/run/kaci/docker-host/docker.sock"
    assert [d["kind"] for d in docs if "buildkit" in d["metadata"]["name"]] == []


def test_namespaced_rbac_grants_roles_only_in_watched_namespaces() -> None:
    docs = render("-f", str(CHART / "ci" / "namespaced-values.yaml"))
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    # The watched namespaces, and "default" for the API server's Endpoints only.
    assert sorted(roles) == ["default", "kaci-ci-a", "kaci-ci-b"]
    assert sorted(b["metadata"]["namespace"] for b in of_kind(docs, "RoleBinding")) == [
        "default",
        "kaci-ci-a",
        "kaci-ci-b",
    ]
    assert roles["default"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["endpoints"],
            "resourceNames": ["kubernetes"],
            "verbs": ["get"],
        }
    ]
    # Cluster-wide: only cluster-scoped reads, nothing that writes or reads secrets.
    (cluster_role,) = of_kind(docs, "ClusterRole")
    for rule in cluster_role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert set(rule["resources"]) <= {"customresourcedefinitions", "namespaces", "nodes"}
    # Peering per watched namespace: a KopfPeering there, and the right to use it.
    peerings = of_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["kaci-ci-a", "kaci-ci-b"]
    assert {p["metadata"]["name"] for p in peerings} == {"kaci-kaci-system"}
    for ns in ("kaci-ci-a", "kaci-ci-b"):
        assert ("kopf.dev", "kopfpeerings", "patch") in _triples(roles[ns]["rules"])
    assert of_kind(docs, "ClusterKopfPeering") == []
    args = container(docs)["args"]
    assert "--namespace=kaci-ci-a" in args
    assert "--namespace=kaci-ci-b" in args
    assert "--peering=kaci-kaci-system" in args
    assert len(args) == 4


def test_cluster_rbac_rules_equal_the_namespaced_ones_plus_discovery() -> None:
    cluster = of_kind(render(), "ClusterRole")[0]["rules"]
    namespaced = render("-f", str(CHART / "ci" / "namespaced-values.yaml"))
    roles = {r["metadata"]["namespace"]: r["rules"] for r in of_kind(namespaced, "Role")}
    discovery = of_kind(namespaced, "ClusterRole")[0]["rules"]
    # The same grants, but peering through the ClusterKopfPeering instead of KopfPeerings.
    peering = {("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")}
    namespaced_peering = {(g, "kopfpeerings", v) for g, _, v in peering}
    assert _triples(cluster) == (
        _triples(discovery)
        | _triples(roles["default"])
        | (_triples(roles["kaci-ci-a"]) - namespaced_peering)
        | peering
    )
    # Least privilege: no wildcards anywhere.
    for rule in cluster:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]


def _triples(rules: list[Manifest]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _rbac_md_triples() -> set[tuple[str, str, str]]:
    """The rules operator/kaci/RBAC.md's table lists (apiGroups | resources | verbs | why)."""
    triples = set()
    for line in (ROOT / "operator" / "kaci" / "RBAC.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        groups = re.findall(r"`([^`]*)`", cells[0])
        resources = re.findall(r"`([^`]*)`", cells[1])
        verbs = [v.strip() for v in cells[2].split(",")]
        triples |= {(g.strip('"'), r, v) for g in groups for r in resources for v in verbs}
    return triples


def test_cluster_rbac_is_exactly_what_the_operator_documents_it_uses() -> None:
    (cluster_role,) = of_kind(render(), "ClusterRole")
    documented = _rbac_md_triples()
    assert len(documented) > 20
    assert _triples(cluster_role["rules"]) == documented


def test_custom_values_reach_the_operator() -> None:
    docs = render("-f", str(CHART / "ci" / "custom-values.yaml"))
    settings = settings_from(env_of(docs))
    assert settings.operator_instance == "canary"
    assert settings.max_parallel_builds == 4
    assert settings.pip_index_url == "https://pypi.example.internal/simple"
    assert "--verbose" in container(docs)["args"]
    assert container(docs)["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert settings.network_policy
    assert settings.network_policy_from == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
        {"ipBlock": {"cidr": "10.88.0.1/32"}},
    ]
    assert settings.scoring_node_selector == {"kaci.dev/pool": "scoring"}
    assert settings.scoring_tolerations == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_network_policy_is_off_by_default() -> None:
    settings = settings_from(env_of(render()))
    assert not settings.network_policy
    assert settings.network_policy_from == []
    assert settings.scoring_node_selector == {}
    assert settings.scoring_tolerations == []


def test_tcp_docker_host_mounts_no_host_socket() -> None:
    docs = render("-f", str(CHART / "ci" / "tcp-docker-values.yaml"))
    pod = deployment(docs)["spec"]["template"]["spec"]
    assert not any("hostPath" in v for v in pod["volumes"])
    assert env_of(docs)["KACI_DOCKER_HOST"] == "tcp://dockerd.kaci-builders.svc:2375"
    assert env_of(docs)["KACI_BUILD_TIMEOUT_S"] == "600"


def test_registry_secrets_are_mounted_and_passed_on() -> None:
    docs = render("-f", str(CHART / "ci" / "pull-secret-values.yaml"))
    env = env_of(docs)
    assert env["KACI_IMAGE_PULL_SECRET"] == "kaci-registry-pull"
    assert env["KACI_REGISTRY_PUSH_CONFIG"] == "/var/run/kaci/registry-push/config.json"
    assert env["KACI_REGISTRY_PULL"] == "registry-mirror.example.internal/ml"
    assert env["KACI_REGISTRY_INSECURE"] == "false"
    pod = deployment(docs)["spec"]["template"]["spec"]
    (push,) = [v for v in pod["volumes"] if v["name"] == "registry-push"]
    assert push["secret"] == {
        "secretName": "kaci-registry-push",
        "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
    }
    assert pod["imagePullSecrets"] == [{"name": "operator-pull"}]
    assert container(docs)["image"].endswith("@sha256:" + "0" * 64)


def test_health_service_selects_the_operator_pod() -> None:
    docs = render("-f", str(CHART / "ci" / "metrics-values.yaml"))
    (svc,) = [d for d in of_kind(docs, "Service") if d["metadata"]["name"].endswith("-health")]
    pod_labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    # ...and not buildkitd's Pod, whose name label is its own.
    bk_labels = buildkitd_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert not svc["spec"]["selector"].items() <= bk_labels.items()
    assert svc["spec"]["ports"][0]["port"] == 9090
    assert container(docs)["ports"][0]["containerPort"] == 9090
    assert "--liveness=http://0.0.0.0:9090/healthz" in container(docs)["args"]
    services = [d["metadata"]["name"] for d in of_kind(render(), "Service")]
    assert services == ["kaci-buildkitd", "kaci-metrics"]  # no health Service by default


def _names_and_label_values(doc: Manifest) -> Iterator[str]:
    meta = doc["metadata"]
    yield meta["name"]
    yield from meta.get("labels", {}).values()
    for ref in [doc.get("roleRef"), *doc.get("subjects", [])]:
        if ref:
            yield ref["name"]


def test_names_are_cut_at_63_characters() -> None:
    docs = render("-f", str(CHART / "ci" / "long-names-values.yaml"), release=LONGEST_RELEASE)
    assert len(docs) >= 5
    for doc in docs:
        for value in _names_and_label_values(doc):
            assert len(value) <= 63, value
            assert not value.endswith("-"), value
    # Suffixed names keep their suffix, so they never collide with the main name.
    assert any(d["metadata"]["name"].endswith("-health") for d in docs)


def _metadata_maps(node: object) -> Iterator[dict[str, object]]:
    """Every labels and annotations map in a manifest, pod templates included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("labels", "annotations") and isinstance(value, dict):
                yield value
            else:
                yield from _metadata_maps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _metadata_maps(item)


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "default")
def test_every_label_and_annotation_value_is_a_string(values: Path | None) -> None:
    # The API server refuses a number there ("cannot unmarshal number into ... annotations").
    docs = render(*(["-f", str(values)] if values else []))
    for doc in docs:
        for mapping in _metadata_maps(doc):
            for key, value in mapping.items():
                assert isinstance(value, str), f"{doc['kind']} {key}: {value!r}"


def test_hash_annotations_are_quoted() -> None:
    # A cut sha256 is sometimes all digits, or digits-e-digits: YAML reads a number,
    # and the install fails on the API server one render in a few hundred (CI saw it).
    unquoted = [
        f"{path.name}: {line.strip()}"
        for path in sorted((CHART / "templates").glob("*.yaml"))
        for line in path.read_text().splitlines()
        if re.search(r"^\s*[\w./-]+:\s*\{\{.*sha256sum", line) and "| quote" not in line
    ]
    assert unquoted == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCont=1"], "replicaCont"),
        (["--set", "builder.dockerhost=tcp://x:2375"], "dockerhost"),
        (["--set", "registry.insecur=false"], "insecur"),
        (["--set", "podSecurityContext.runAsUsr=0"], "runAsUsr"),
        (["--set", "replicaCount=2", "--set", "peering.enabled=false"], "replicaCount"),
        (["--set", "replicaCount=-1"], "replicaCount"),
        (["--set", "peering.lifetimeSeconds=5"], "lifetimeSeconds"),
        (["--set", "peering.name=Not_A_Name"], "name"),
        (["--set", "builder.dockerHost=/var/run/docker.sock"], "dockerHost"),
        (["--set", "registry.insecure=maybe"], "insecure"),
        (["--set", "resources.requests.memory=lots"], "memory"),
        (["--set", "serving.networkPolicy.from[0].podSelectr.x=y"], "podSelectr"),
        (["--set", "serving.networkPolicy.enabled=yes"], "enabled"),
    ],
)
def test_a_typo_or_bad_value_fails_through_the_schema(args: list[str], message: str) -> None:
    proc = run_helm("template", "kaci", str(CHART), *args)
    assert proc.returncode != 0
    assert "schema" in proc.stderr
    assert message in proc.stderr


def test_namespaced_rbac_without_namespaces_is_refused_with_a_reason() -> None:
    proc = run_helm("template", "kaci", str(CHART), "--set", "rbac.namespaced=true")
    assert proc.returncode != 0
    assert "watchNamespaces" in proc.stderr


def test_schema_forbids_unknown_keys_at_every_object_level() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    free_form = []

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "object":
            extra = node.get("additionalProperties")
            if "properties" in node:
                assert extra is False, f"{path} allows unknown keys"
            elif isinstance(extra, dict):
                assert extra == {"type": "string"}, path  # string maps: labels, annotations
            else:
                free_form.append(path)
        for key, child in node.items():
            if isinstance(child, dict):
                walk(child, f"{path}.{key}")
            elif isinstance(child, list):
                for i, item in enumerate(child):
                    walk(item, f"{path}.{key}[{i}]")

    walk(schema, "$")
    # Kubernetes-typed pass-through objects, checked by the API server (dry-run tests).
    assert sorted(free_form) == sorted(
        [
            "$.properties.global",
            "$.properties.operator.properties.extraEnv.items.properties.valueFrom",
            "$.properties.affinity.properties.nodeAffinity",
            "$.properties.affinity.properties.podAffinity",
            "$.properties.affinity.properties.podAntiAffinity",
            "$.properties.topologySpreadConstraints.items",
            "$.properties.extraVolumes.items",
            "$.properties.extraVolumeMounts.items",
            "$.properties.serving.properties.networkPolicy.properties.from.items.properties.podSelector",
            "$.properties.serving.properties.networkPolicy.properties.from.items.properties.namespaceSelector",
        ]
    )


def test_every_value_has_a_comment_above_it() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    key = re.compile(r"^\s*[A-Za-z][A-Za-z0-9_-]*:")
    previous = ""
    for number, line in enumerate(lines, start=1):
        if key.match(line):
            assert previous.lstrip().startswith("#"), f"values.yaml:{number} {line.strip()}"
        if line.strip():
            previous = line
    # ...and every top-level value in values.yaml is in the schema (and the other way round).
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) == set(schema["properties"])


def test_peering_replicas_roll_and_share_one_peering_object() -> None:
    docs = render("-f", str(CHART / "ci" / "peering-values.yaml"))
    dep = deployment(docs)
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    (peering,) = of_kind(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "kaci-ha"
    assert "status" not in peering  # kopf writes it
    ctr = container(docs)
    # kopf's identity in the peering object is the Pod's name.
    (pod_id,) = [e for e in ctr["env"] if e["name"] == "POD_ID"]
    assert pod_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # The operator reads the chart's arguments and environment into kopf's settings.
    env = settings_from(env_of(docs))
    args = parse_args([a for a in ctr["args"] if not a.startswith("--liveness")], env)
    kopf = kopf_settings(
        peering=args.peering,
        priority=args.priority,
        lifetime_s=env.peering_lifetime_s,
        clusterwide=not args.namespace,
        started_ns=0,
        tiebreak=0,
    ).peering
    assert (kopf.standalone, kopf.mandatory, kopf.name) == (False, True, "kaci-ha")
    assert (kopf.clusterwide, kopf.lifetime) == (True, 15)
    # RBAC: read and patch the peering object, never create or delete it.
    (cluster_role,) = of_kind(docs, "ClusterRole")
    kopf_rules = {t for t in _triples(cluster_role["rules"]) if t[0] == "kopf.dev"}
    assert kopf_rules == {
        ("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")
    }


def test_standalone_values_recreate_and_grant_no_peering() -> None:
    docs = render("-f", str(CHART / "ci" / "standalone-values.yaml"))
    dep = deployment(docs)
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(a.startswith("--peering") for a in container(docs)["args"])
    assert "POD_ID" not in env_of(docs)
    assert "KACI_PEERING_LIFETIME_S" not in env_of(docs)
    assert not [d for d in docs if d["apiVersion"].startswith("kopf.dev/")]
    (cluster_role,) = of_kind(docs, "ClusterRole")
    assert not [t for t in _triples(cluster_role["rules"]) if t[0] == "kopf.dev"]


@pytest.mark.parametrize("replicas", ["0", "2", "5"])
def test_any_replica_count_with_peering(replicas: str) -> None:
    docs = render("--set", f"replicaCount={replicas}")
    assert deployment(docs)["spec"]["replicas"] == int(replicas)


def _claimed_outside(docs: list[Manifest], release_ns: str) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object outside the release's namespace: the
    cluster-scoped ones ("" namespace) and those put into watched namespaces or "default".
    Two releases must not both claim one of these (Helm refuses the second install)."""
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        for d in docs
        if d["metadata"].get("namespace", "") != release_ns
    }


@pytest.mark.parametrize(
    "values",
    [
        [],
        *(
            ["-f", str(CHART / "ci" / f"{f}.yaml")]
            for f in ("namespaced-values", "standalone-values")
        ),
    ],
    ids=["default", "namespaced", "standalone"],
)
def test_one_release_name_in_two_namespaces_claims_no_object_twice(values: list[str]) -> None:
    """`kaci` in kaci-system (make demo) and `kaci` in another namespace: every
    cluster-scoped object, and every object in a namespace both releases reach (the
    watched ones, "default"), has a name of each release's own."""
    a = render(*values, "--namespace", "team-a")
    b = render(*values, "--namespace", "team-b")
    claimed_a, claimed_b = _claimed_outside(a, "team-a"), _claimed_outside(b, "team-b")
    assert claimed_a, "nothing outside the release namespace: the test would prove nothing"
    assert not claimed_a & claimed_b
    kinds = {kind for kind, _, _ in claimed_a}
    assert {"ClusterRole", "ClusterRoleBinding"} <= kinds
    # The bindings point at their own release's roles and ServiceAccount.
    roles = {("ClusterRole", "", d["metadata"]["name"]) for d in of_kind(a, "ClusterRole")} | {
        ("Role", d["metadata"]["namespace"], d["metadata"]["name"]) for d in of_kind(a, "Role")
    }
    for doc in of_kind(a, "ClusterRoleBinding") + of_kind(a, "RoleBinding"):
        ref = doc["roleRef"]
        where = doc["metadata"].get("namespace", "") if ref["kind"] == "Role" else ""
        assert (ref["kind"], where, ref["name"]) in roles, doc
        assert doc["subjects"] == [
            {"kind": "ServiceAccount", "name": "kaci", "namespace": "team-a"}
        ]


def test_long_names_stay_distinct_when_cut() -> None:
    """Two namespaces whose names differ only past the 63-character cut still give two
    names (the cut part ends in a hash of the whole)."""
    long_ns = "n" * 60
    a = render("--namespace", f"{long_ns}-a", release=LONGEST_RELEASE)
    b = render("--namespace", f"{long_ns}-b", release=LONGEST_RELEASE)
    names_a = {n for _, _, n in _claimed_outside(a, f"{long_ns}-a")}
    names_b = {n for _, _, n in _claimed_outside(b, f"{long_ns}-b")}
    assert names_a
    assert names_b
    assert not names_a & names_b
    for name in names_a | names_b:
        assert len(name) <= 63, name
        assert not name.endswith("-"), name


def test_a_named_peering_object_is_used_as_named() -> None:
    docs = render("--set", "peering.name=shared-peering")
    (peering,) = of_kind(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "shared-peering"
    assert "--peering=shared-peering" in container(docs)["args"]


def test_socket_mount_mounts_the_socket_file_only_when_asked() -> None:
    docs = render("--set", "builder.driver=docker", "--set", "builder.socketMount=Socket")
    pod = deployment(docs)["spec"]["template"]["spec"]
    (host,) = [v for v in pod["volumes"] if "hostPath" in v]
    assert host["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["name"] == host["name"]]
    assert mount["mountPath"] == "/var/run/docker.sock"
    assert env_of(docs)["KACI_DOCKER_HOST"] == "unix:///var/run/docker.sock"


def test_a_socket_elsewhere_mounts_its_own_folder() -> None:
    docs = render(
        "--set",
        "builder.driver=docker",
        "--set",
        "builder.dockerHost=unix:///run/docker-engine/engine.sock",
    )
    pod = deployment(docs)["spec"]["template"]["spec"]
    (host,) = [v for v in pod["volumes"] if "hostPath" in v]
    assert host["hostPath"] == {"path": "/run/docker-engine", "type": "Directory"}
    assert env_of(docs)["KACI_DOCKER_HOST"] == "unix:///var/run/kaci/docker-host/engine.sock"


def test_a_socket_in_the_root_folder_is_refused_with_a_reason() -> None:
    """Mounting the node's / into the Pod is never what anyone wants."""
    docker = ["--set", "builder.driver=docker"]
    proc = run_helm(
        "template", "kaci", str(CHART), *docker, "--set", "builder.dockerHost=unix:///d.sock"
    )
    assert proc.returncode != 0
    assert "builder.socketMount=Socket" in proc.stderr
    docs = render(
        *docker, "--set", "builder.dockerHost=unix:///d.sock", "--set", "builder.socketMount=Socket"
    )
    assert env_of(docs)["KACI_DOCKER_HOST"] == "unix:///d.sock"


def test_default_image_is_the_app_version_the_build_script_also_pushes() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert container(render())["image"] == f"127.0.0.1:5000/kaci/operator:{chart['appVersion']}"


def test_metrics_service_and_monitors() -> None:
    docs = render()
    (svc,) = [d for d in of_kind(docs, "Service") if d["metadata"]["name"] == "kaci-metrics"]
    pod_labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert {"name": "KACI_METRICS_PORT", "value": "9102"} in container(docs)["env"]
    # ServiceMonitor/PodMonitor only where the Prometheus Operator's CRDs are.
    asked = (
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.podMonitor.enabled=true",
    )
    assert of_kind(render(*asked), "ServiceMonitor") == []
    docs = render(*asked, "--api-versions", "monitoring.coreos.com/v1")
    (sm,) = of_kind(docs, "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    (pm,) = of_kind(docs, "PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "kaci-webservice"}
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    targets = {r["targetLabel"] for r in pm["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert targets == {"webservice", "namespace", "pod"}  # what the dashboard reads
    off = render("--set", "metrics.enabled=false")
    assert not [d for d in of_kind(off, "Service") if d["metadata"]["name"] == "kaci-metrics"]
    assert "KACI_METRICS_PORT" not in str(container(off)["env"])


def test_production_knobs() -> None:
    docs = render(
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "topologySpreadConstraints[0].maxSkew=1",
        "--set",
        "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
        "--set",
        "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
        "--set",
        "global.imagePullSecrets[0]=corp",
        "--set",
        "imagePullSecrets[0]=mine",
        "--set",
        "imagePullSecrets[1]=corp",
        "--set",
        "extraVolumes[0].name=ca",
        "--set",
        "extraVolumes[0].configMap.name=corp-ca",
        "--set",
        "extraVolumeMounts[0].name=ca",
        "--set",
        "extraVolumeMounts[0].mountPath=/etc/corp-ca",
    )
    (pdb,) = of_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1  # one replica: never blocks a drain
    pod = deployment(docs)["spec"]["template"]["spec"]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"].items() <= (
        deployment(docs)["spec"]["template"]["metadata"]["labels"].items()
    )
    assert pod["imagePullSecrets"] == [{"name": "corp"}, {"name": "mine"}]
    assert buildkitd_deployment(docs)["spec"]["template"]["spec"]["imagePullSecrets"] == [
        {"name": "corp"},
        {"name": "mine"},
    ]
    assert {"name": "ca", "configMap": {"name": "corp-ca"}} in pod["volumes"]
    assert {"name": "ca", "mountPath": "/etc/corp-ca"} in container(docs)["volumeMounts"]
    peered = render("--set", "podDisruptionBudget.enabled=true", "--set", "replicaCount=2")
    (pdb,) = of_kind(peered, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
