"""One careful HTTP POST, shared by the HTTP-based back ends.

httpx is imported here, and this module only when something is sent: never
on a short invocation.

What the environment may change is decided here, not by httpx's
`trust_env` (which would also read `~/.netrc` and send its credentials to
the receiver): a loopback endpoint is always reached directly; any other
endpoint honours the standard proxy variables (`https_proxy`, `all_proxy`,
`no_proxy`, lower or upper case), as corporate networks need; an https
endpoint is checked against `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, and an
https proxy against them besides httpx's bundle (through OpenSSL's defaults).
Nothing else of the environment or the home folder is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .._checks import check_endpoint
from .._version import __version__
from .base import DeliveryError

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = [
    "USER_AGENT",
    "check_endpoint",
    "gzip_if_large",
    "is_loopback_host",
    "post",
    "proxy_for",
    "retry_after_seconds",
]

# The one User-Agent of every back end: the library and its version, nothing of the machine.
USER_AGENT = f"typer-telemetry/{__version__}"
# Headers `post` sets itself, whatever a back end or its author passed.
_OWN_HEADERS = frozenset({"user-agent", "accept-encoding"})

# Bodies at least this large are gzipped when the receiver is known to accept it.
GZIP_FROM_BYTES = 1024
MAX_RESPONSE_BYTES = 64 * 1024
# The longest wait a receiver's Retry-After can impose; anything longer is cut to this.
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def gzip_if_large(body: bytes, headers: dict[str, str]) -> bytes:
    import gzip

    if len(body) < GZIP_FROM_BYTES:
        return body
    headers["Content-Encoding"] = "gzip"
    return gzip.compress(body, mtime=0)


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
) -> bytes:
    """POST `body`; return the response body of a 2xx reply, else raise DeliveryError.

    Every failure is a DeliveryError, whatever raised it (a certificate file
    that is missing or not one, a proxy scheme httpx cannot use, a URL httpx
    refuses): the caller's report says what failed, and the tool never sees it.

    Redirects are not followed (a receiver that moved must be reconfigured,
    and data never follows a redirect to another host). The reply is read up
    to MAX_RESPONSE_BYTES; anything longer is refused unread. A reply that is
    not 2xx is refused without reading its body; a 429 or 503 carries its
    `Retry-After` in the error. The whole exchange ends by `timeout`: httpx's
    timeouts bound each read, not their sum, so a server sending one byte at
    a time (even of its headers) is cut off by shutting its socket down.
    """
    import socket
    import threading
    import time

    from .. import _exiting

    load_httpx()  # only when sending
    import httpx

    sockets: list[socket.socket] = []
    expired = threading.Event()
    exited = threading.Event()

    def trace(event: str, info: Mapping[str, object]) -> None:
        # httpx's public trace hook hands over the connected stream. Resolving
        # the name and connecting cannot be cut: an exit does not wait for them.
        if event == "connection.connect_tcp.started":
            _exiting.uncuttable(True)
        elif event in ("connection.connect_tcp.complete", "connection.connect_tcp.failed"):
            _exiting.uncuttable(False)
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            found = getattr(stream, "get_extra_info", lambda _name: None)("socket")
            if isinstance(found, socket.socket):
                sockets.append(found)
                if expired.is_set() or exited.is_set():
                    _shut(found)

    def cut(ended: threading.Event) -> None:
        ended.set()
        for connected in sockets:
            _shut(connected)

    watchdog = threading.Timer(timeout, cut, (expired,))
    watchdog.daemon = True
    deadline = time.monotonic() + timeout
    # Replies are never compressed: a small gzip body must not unpack to gigabytes.
    request_headers = {
        **{name: value for name, value in headers.items() if name.lower() not in _OWN_HEADERS},
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
    }
    try:
        watchdog.start()
        with (
            _exiting.cut_on_exit(lambda: cut(exited)),
            _client(url, timeout) as client,
            client.stream(
                "POST", url, content=body, headers=request_headers, extensions={"trace": trace}
            ) as response,
        ):
            if not 200 <= response.status_code < 300:
                raise DeliveryError(
                    f"the receiver answered {response.status_code}",
                    retry_after=retry_after_seconds(response.headers)
                    if response.status_code in (429, 503)
                    else None,
                )
            received = bytearray()
            for chunk in response.iter_raw():
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES:
                    raise DeliveryError("the reply is larger than expected")
                if time.monotonic() > deadline:
                    raise DeliveryError("the reply took longer than the timeout")
            return bytes(received)
    except DeliveryError:
        raise
    except Exception as error:  # httpx's, ssl's, the file system's: all are "not delivered"
        if exited.is_set() and isinstance(error, httpx.HTTPError):
            raise DeliveryError("the tool exited before the reply") from None
        if expired.is_set() and isinstance(error, httpx.HTTPError):
            raise DeliveryError("the reply took longer than the timeout") from None
        raise DeliveryError(f"{type(error).__name__}: {error}") from None
    finally:
        _exiting.uncuttable(False)
        watchdog.cancel()
        if watchdog.ident is not None:  # started: it only has to wake and return
            watchdog.join()  # so that no thread of ours outlives the exchange


def load_httpx() -> None:
    """Import httpx without the command-line client its package loads with it.

    httpx's `__init__` imports `httpx._main`, its `httpx` command, and with it
    click's, rich's and pygments' modules (about 90 modules and 7,000
    objects) wherever click is installed: beside Typer 0.25 and earlier, and
    with many packages (uvicorn, mkdocs, black, ...). The sending thread would
    import them while the tool's command runs (about 50 ms of CPU), and the
    interpreter's last collections at the tool's exit would walk them all.
    So while httpx loads, `httpx._main` counts as absent (httpx has a
    fallback for that), and `httpx.main` then loads the real command when
    called. An httpx the tool has already imported is used as it is, and one
    that would not load so is loaded whole.
    """
    import sys

    if "httpx" in sys.modules:
        return
    blocked = "httpx._main" not in sys.modules
    if blocked:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    needs_its_command = False
    try:
        import httpx
    except ImportError:
        if not blocked:
            raise
        needs_its_command = True
    finally:
        if blocked and "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]
    if needs_its_command:  # an httpx that cannot load without it (none so far): loaded whole
        import httpx
    elif blocked:
        httpx.main = _command_when_called(httpx.main)  # type: ignore[assignment]


def _command_when_called(fallback: Callable[..., object]) -> Callable[..., object]:
    """`httpx.main` as httpx would have it: its command, imported when called.

    Without the command's dependencies (click), httpx's own `fallback` runs,
    as it would have had httpx loaded `httpx._main` itself.
    """

    def main(*arguments: object, **options: object) -> object:
        try:
            from httpx._main import main as command
        except ImportError:
            return fallback(*arguments, **options)
        return command(*arguments, **options)

    return main


def _client(url: str, timeout: float) -> httpx.Client:
    """A client that reads nothing from the environment but what the module docstring lists."""
    load_httpx()
    import httpx

    target = httpx.URL(url)
    proxy = proxy_for(target.scheme, target.host)
    transport = httpx.HTTPTransport(
        verify=_trusted_certificates() if target.scheme == "https" else _no_tls(),
        trust_env=False,
        proxy=httpx.Proxy(proxy) if proxy is not None else None,
    )
    return httpx.Client(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy URL the environment sets for this endpoint, or None to connect directly.

    A loopback host never goes through a proxy: a proxy would see in plain
    text what never had to leave the machine. Otherwise `<scheme>_proxy`
    then `all_proxy` apply (lower case before upper case, as curl and the
    standard library read them) unless `no_proxy` names the host.
    """
    import urllib.request

    if is_loopback_host(host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or _excluded(host, proxies.get("no", "")):
        return None
    return proxy


def _excluded(host: str, no_proxy: str) -> bool:
    """Whether `no_proxy` names the host: `*`, the host or a parent domain, or a CIDR range."""
    import ipaddress

    name = host.strip("[]").rstrip(".").lower()
    for raw in no_proxy.replace(",", " ").split():
        entry = raw.lower().lstrip("*").lstrip(".").rstrip(".")
        if raw == "*":
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if entry.count(":") == 1:  # host:port; the port does not matter here
            entry = entry.partition(":")[0]
        entry = entry.strip("[]")
        if entry and (name == entry or name.endswith("." + entry)):
            return True
    return False


def is_loopback_host(host: str) -> bool:
    """`localhost` (and `*.localhost`), 127.0.0.0/8 in any IPv4 spelling, `::1`, mapped or not."""
    import ipaddress
    import socket

    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        try:  # the legacy spellings the resolver still accepts: 127.1, 2130706433, 0x7f.1
            return socket.inet_aton(name)[0] == 127
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _no_tls() -> ssl.SSLContext:
    """For a plain `http` endpoint (on this machine, never proxied): a context that trusts nothing.

    No TLS is spoken, and loading the certificate bundle would take tens of
    milliseconds of the sending thread, its objects kept until the tool
    exits. Were TLS ever spoken with this context, it would fail closed.
    """
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _trusted_certificates() -> ssl.SSLContext | bool:
    """`SSL_CERT_FILE` or `SSL_CERT_DIR` when set (a corporate CA), else httpx's own bundle.

    A file that is missing or holds no certificate raises here, and the
    request fails as not delivered.
    """
    import os
    import ssl

    certificate_file = os.environ.get("SSL_CERT_FILE")
    if certificate_file:
        return ssl.create_default_context(cafile=certificate_file)
    certificate_dir = os.environ.get("SSL_CERT_DIR")
    if certificate_dir:
        return ssl.create_default_context(capath=certificate_dir)
    return True


def _shut(connected: object) -> None:
    import contextlib
    import socket

    with contextlib.suppress(OSError):  # already closed
        connected.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a `Retry-After` header asks for, in seconds, capped at a day; None if absent.

    Both forms are understood: delay-seconds, and an HTTP-date, which is
    measured against the reply's own `Date` when it has one (so that a skewed
    clock on either side does not matter), else against this machine's clock.
    """
    import re
    import time
    from datetime import timezone
    from email.utils import parsedate_to_datetime

    value = headers.get("retry-after", "").strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(
            MAX_RETRY_AFTER_SECONDS if len(value) > 9 else min(int(value), MAX_RETRY_AFTER_SECONDS)
        )

    def moment(text: str) -> float | None:
        try:
            parsed = parsedate_to_datetime(text)
            if parsed.tzinfo is None:  # "-0000": HTTP dates are GMT, never local time
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None

    when = moment(value)
    if when is None:
        return None
    reference = moment(headers.get("date", "").strip())
    seconds = when - (reference if reference is not None else time.time())
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER_SECONDS))
