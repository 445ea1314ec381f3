"""Webhook signing (Standard Webhooks) and the SSRF guard, case by case."""

import ipaddress
import socket

import pytest

from geoexport.notify.ssrf import BlockedDestination, check_address, check_registered, resolve
from geoexport.notify.webhooks import sign


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    # From the Standard Webhooks specification's reference implementations.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


BLOCKED = [
    "169.254.169.254",
    "fd00:ec2::254",
    "127.0.0.1",
    "::1",
    "::ffff:169.254.169.254",
    "::ffff:127.0.0.1",
    "0.0.0.0",
    "::",
    "100.64.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "198.18.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
    "fe80::1",
    "::7f00:1",  # IPv4-compatible ::127.0.0.1 (issue 12)
    "::a9fe:a9fe",  # IPv4-compatible ::169.254.169.254
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
    "fec0::1",  # site-local
    "100::1",  # discard-only
    "5f00::1",  # outside global unicast
]


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(BlockedDestination):
        check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"])
def test_public_addresses_pass(address: str) -> None:
    check_address(ipaddress.ip_address(address))


def test_loopback_only_is_allowed_by_the_setting() -> None:
    check_address(ipaddress.ip_address("127.0.0.1"), allow_loopback=True)
    check_address(ipaddress.ip_address("::ffff:127.0.0.1"), allow_loopback=True)
    for other in ("10.0.0.1", "169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0"):
        with pytest.raises(BlockedDestination):
            check_address(ipaddress.ip_address(other), allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",  # 169.254.169.254 in decimal
        "http://0251.0376.0251.0376/",  # and in octal
        "http://0xA9FEA9FE/",  # and in hex
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://localhost:8080/",
        "http://127.1/",
        "ftp://example.org/",
        "http://user:pass@8.8.8.8/",
        "http:///nohost",
    ],
)
def test_urls_are_resolved_then_checked(url: str) -> None:
    with pytest.raises(BlockedDestination):
        resolve(url)


def test_https_only_and_the_pinned_address(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BlockedDestination, match="https"):
        resolve("http://8.8.8.8/hook", https_only=True)
    calls = []

    def fake_getaddrinfo(host: str, port: int, **kwargs: object) -> list[tuple[object, ...]]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    destination = resolve("https://receiver.example/hook?x=1")
    assert (destination.address, destination.host, destination.port, destination.target) == (
        "93.184.216.34",
        "receiver.example",
        443,
        "/hook?x=1",
    )
    assert calls == ["receiver.example"]


def test_a_name_that_resolves_to_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def rebinding(host: str, port: int, **kwargs: object) -> list[tuple[object, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(BlockedDestination, match=r"10\.0\.0\.5"):
        resolve("https://evil.example/")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:pw@hooks.example.org/x", "credentials"),
        ("http://169.254.169.254/latest", "not a"),
        ("http://[::7f00:1]/x", "not a"),
        ("http://10.0.0.1/x", "not a"),
    ],
)
def test_credentials_and_private_literals_are_refused_at_registration(url: str, reason: str) -> None:
    with pytest.raises(BlockedDestination, match=reason):
        check_registered(url)


def test_names_and_public_literals_pass_registration() -> None:
    check_registered("https://hooks.example.org/x")  # names are checked when connecting
    check_registered("https://[2606:4700:4700::1111]/x")
    check_registered("http://127.0.0.1:8080/x", allow_loopback=True)
