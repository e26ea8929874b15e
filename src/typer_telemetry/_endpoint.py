"""Which endpoints may receive data: https anywhere, plain http only to this machine.

Checked when a Telemetry object is made, so it stays light: standard library only.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str) -> str:
    """Refuse anything but https, or plain http to this machine (for local collectors and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise ValueError(f"refusing endpoint {url!r}: use https (plain http only to localhost)")
