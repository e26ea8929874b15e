"""The checks of the author's settings: which endpoints may receive data."""

from __future__ import annotations

import ipaddress

import pytest

from typer_telemetry._checks import check_endpoint

HOSTS = [
    "127.0.0.1",
    "127.255.255.254",
    "127.1.2.3",
    "127.0.0.256",
    "127.00.0.1",
    "0127.0.0.1",
    "128.0.0.1",
    "10.0.0.1",
    "1.2.3.4",
    "١٢٧.0.0.1",
    "127.0.0",
    "::1",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",
    "fe80::1",
]


def _loopback_by_ipaddress(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.mark.parametrize("host", HOSTS)
def test_plain_http_is_accepted_exactly_for_the_addresses_ipaddress_calls_loopback(
    host: str,
) -> None:
    url = f"http://[{host}]:4318/v1" if ":" in host else f"http://{host}:4318/v1"
    try:
        accepted = check_endpoint(url) == url
    except ValueError:
        accepted = False
    assert accepted == _loopback_by_ipaddress(host)


@pytest.mark.parametrize("url", ["https://t.example.com/v1", "http://localhost:8000/v1"])
def test_https_anywhere_and_http_to_localhost_are_accepted(url: str) -> None:
    assert check_endpoint(url) == url


@pytest.mark.parametrize(
    "url", ["http://t.example.com/v1", "ftp://127.0.0.1/", "https:///v1", "t.example.com"]
)
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        check_endpoint(url)
