from __future__ import annotations

import ipaddress

import pytest
from kaci import urlpolicy as up

BLOCKED = up.parse_networks("10.96.0.0/12,10.0.0.1/32")


def fixed(*addrs: str) -> up.Resolver:
    return lambda host, port: list(addrs)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://x/y", "gopher://x", "x/y", "http://user:pw@host/m"]
)
def test_bad_syntax_refused(url: str) -> None:
    with pytest.raises(up.URLRefusedError):
        up.check_url(url, BLOCKED, [], fixed("93.184.216.34"))


@pytest.mark.parametrize(
    "addr",
    [
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "10.96.0.1",
        "10.0.0.1",
        "0.0.0.0",  # noqa: S104
        "fe80::1",
        "224.0.0.1",
    ],
)
def test_internal_addresses_refused(addr: str) -> None:
    with pytest.raises(up.URLRefusedError):
        up.check_url("https://models.example/m.pkl", BLOCKED, [], fixed(addr))


def test_any_bad_address_among_several_refuses() -> None:
    with pytest.raises(up.URLRefusedError):
        up.check_url("https://m.example/x", BLOCKED, [], fixed("93.184.216.34", "127.0.0.1"))


def test_public_and_allowed_pass() -> None:
    up.check_url("https://m.example/x", BLOCKED, [], fixed("93.184.216.34"))
    allowed = up.parse_networks("127.0.0.1/32")
    up.check_url("http://127.0.0.1:8000/x", BLOCKED, allowed, fixed("127.0.0.1"))


def test_unresolvable_refused() -> None:
    def boom(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(up.URLRefusedError, match="does not resolve"):
        up.check_url("https://nope.invalid/x", [], [], boom)


def test_syntax_gives_default_ports() -> None:
    assert up.check_syntax("https://h/x") == ("h", 443)
    assert up.check_syntax("http://h:81/x") == ("h", 81)
    assert up.parse_networks("") == []
    assert up.parse_networks("10.0.0.0/8")[0] == ipaddress.ip_network("10.0.0.0/8")


def test_api_server_refused_even_when_its_network_is_allowed() -> None:
    allowed = up.parse_networks("127.0.0.1/32")
    api = [("127.0.0.1", 6443)]
    with pytest.raises(up.URLRefusedError, match="API server"):
        up.check_url("https://127.0.0.1:6443/api", [], allowed, fixed("127.0.0.1"), api)
    up.check_url("http://127.0.0.1:8000/m.pkl", [], allowed, fixed("127.0.0.1"), api)
