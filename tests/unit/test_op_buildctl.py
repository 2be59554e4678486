"""buildctl's command line from the settings: address and mTLS, the push with the
configured compression (model images gzip), the registry cache, plain HTTP only
for the configured registry."""

from __future__ import annotations

from pathlib import Path

from kaci.edges import buildctl
from kaci.edges.buildkit_builder import unreachable_registry
from kaci.settings import Settings

CTX = Path("/tmp/ctx")
META = Path("/tmp/meta.json")


def _flag(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_scoring_image_zstd_with_registry_cache_over_plain_http() -> None:
    s = Settings(buildkit_addr="tcp://10.0.0.5:1234", buildctl="/opt/bin/buildctl")
    args = buildctl.build_args(s, "127.0.0.1:5000/kaci/ns/img:abc", CTX, META, "scoring")
    assert args[:3] == ["/opt/bin/buildctl", "--addr", "tcp://10.0.0.5:1234"]
    assert args[3] == "build"
    assert "--progress=rawjson" in args
    assert "--frontend=dockerfile.v0" in args
    assert _flag(args, "--local") == [f"context={CTX}", f"dockerfile={CTX}"]
    assert _flag(args, "--output") == [
        "type=image,name=127.0.0.1:5000/kaci/ns/img:abc,push=true,compression=zstd,"
        "force-compression=true,registry.insecure=true"
    ]
    assert _flag(args, "--metadata-file") == [str(META)]
    assert _flag(args, "--export-cache") == [
        "type=registry,ref=127.0.0.1:5000/kaci/ns/img:buildcache,mode=max,compression=zstd,"
        "ignore-error=true,registry.insecure=true"
    ]
    assert _flag(args, "--import-cache") == [
        "type=registry,ref=127.0.0.1:5000/kaci/ns/img:buildcache,registry.insecure=true"
    ]


def test_model_images_stay_gzip_and_need_no_cache() -> None:
    s = Settings(image_compression="zstd")
    args = buildctl.build_args(s, "127.0.0.1:5000/kaci-models/ns/m:1", CTX, META, "model")
    (output,) = _flag(args, "--output")
    assert "compression=gzip" in output
    assert not _flag(args, "--export-cache")
    assert not _flag(args, "--import-cache")


def test_tls_registry_cache_off_and_gzip() -> None:
    s = Settings(
        registry="registry.example.com/team",
        registry_insecure=False,
        image_compression="gzip",
        build_cache="none",
        buildkit_tls_ca="/certs/ca.pem",
        buildkit_tls_cert="/certs/tls.crt",
        buildkit_tls_key="/certs/tls.key",
        buildkit_tls_server_name="kaci-buildkitd",
    )
    args = buildctl.build_args(s, "registry.example.com/team/ns/img:abc", CTX, META, "scoring")
    assert _flag(args, "--tlscacert") == ["/certs/ca.pem"]
    assert _flag(args, "--tlscert") == ["/certs/tls.crt"]
    assert _flag(args, "--tlskey") == ["/certs/tls.key"]
    assert _flag(args, "--tlsservername") == ["kaci-buildkitd"]
    # the global flags come before the subcommand
    assert args.index("--tlskey") < args.index("build")
    (output,) = _flag(args, "--output")
    assert "registry.insecure" not in output
    assert "compression=gzip" in output
    assert not _flag(args, "--export-cache")


def test_plain_http_only_for_the_configured_registries() -> None:
    s = Settings(registry="10.88.0.1:5000", registry_pull="127.0.0.1:5000")
    assert buildctl.plain_http(s, "10.88.0.1:5000/kaci/a:1")
    assert buildctl.plain_http(s, "127.0.0.1:5000/kaci/a:1")
    assert not buildctl.plain_http(s, "registry.example.com/kaci/a:1")


def test_repository_and_cache_refs_keep_a_port() -> None:
    assert buildctl.repository_of("127.0.0.1:5000/kaci/a:tag") == "127.0.0.1:5000/kaci/a"
    assert buildctl.repository_of("127.0.0.1:5000/kaci/a") == "127.0.0.1:5000/kaci/a"
    assert buildctl.cache_ref("h:1/x/y:t") == "h:1/x/y:buildcache"


def test_answers_asks_the_workers_with_the_same_connection() -> None:
    s = Settings(buildkit_addr="unix:///run/bk.sock", buildkit_tls_ca="/ca")
    assert buildctl.answers_args(s) == [
        "buildctl",
        "--addr",
        "unix:///run/bk.sock",
        "--tlscacert",
        "/ca",
        "debug",
        "workers",
    ]


def test_docker_config_reaches_buildctl() -> None:
    env = buildctl.environment({"PATH": "/bin"}, "/var/run/kaci/registry-push")
    assert env == {"PATH": "/bin", "DOCKER_CONFIG": "/var/run/kaci/registry-push"}
    assert buildctl.environment({"PATH": "/bin"}, None) == {"PATH": "/bin"}


def test_each_driver_setting_picks_its_builder() -> None:
    from kaci.edges.buildkit_builder import BuildkitBuilder
    from kaci.edges.docker_builder import DockerBuilder
    from kaci.edges.live import LiveEdges

    assert isinstance(LiveEdges(Settings()).builder, BuildkitBuilder)  # the default
    assert isinstance(LiveEdges(Settings(builder="remote")).builder, BuildkitBuilder)
    assert isinstance(LiveEdges(Settings(builder="docker")).builder, DockerBuilder)


def test_an_images_own_compression_wins_over_the_setting_for_scoring_images_only() -> None:
    from pathlib import Path

    from kaci.edges import buildctl
    from kaci.settings import Settings

    settings = Settings(registry="127.0.0.1:5000", image_compression="zstd")
    args = buildctl.build_args(
        settings, "127.0.0.1:5000/a:b", Path("/c"), Path("/m"), "scoring", "gzip"
    )
    assert any("compression=gzip" in a for a in args)
    model = buildctl.build_args(
        settings, "127.0.0.1:5000/a:b", Path("/c"), Path("/m"), "model", "zstd"
    )
    assert not any("compression=zstd" in a for a in model)


def test_the_unreachable_registry_is_the_one_buildkitd_names() -> None:
    said = (
        "failed to solve: 127.0.0.1:5000/kaci/base:1: failed to resolve source metadata for "
        '127.0.0.1:5000/kaci/base:1: failed to do request: Head "http://127.0.0.1:5000/v2/'
        'kaci/base/manifests/1": dial tcp 127.0.0.1:5000: connect: connection refused'
    )
    assert unreachable_registry(said) == "127.0.0.1:5000"
    assert unreachable_registry('Head "https://reg.example:443/v2/x/manifests/1"') == (
        "reg.example:443"
    )
    assert unreachable_registry("dial tcp: lookup buildkitd: no such host") is None
