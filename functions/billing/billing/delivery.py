"""One webhook attempt over HTTP, safe against server-side request forgery.

At every attempt the host is resolved and every address it resolves to is checked (webhooks.public: no private,
loopback, link-local or metadata, CGNAT, multicast, reserved or documentation address, nor an IPv6 form of one);
the connection is then made to an address that was checked, never to a second resolution (no DNS rebinding), with
TLS verified for the host name. Redirects are never followed (a 3xx is a failed attempt), and the whole attempt
has TIMEOUT_S. Locally `http://127.0.0.1:PORT` and `http://localhost:PORT` are let through to a receiver on this
machine.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from billing.outcome import Outcome
from billing.webhooks import TIMEOUT_S, is_local_url, public

MAX_RESPONSE = 64 * 1024


class Refused(Exception):
    """The URL may not be called (its address is not public); counted as a failed attempt."""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, each checked; Refused if any is not public (a name that resolves to one
    private address among public ones is refused whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise Refused(f"{host} does not resolve: {error.strerror}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))  # the resolver's order, each once
    for address in addresses:
        if not public(ipaddress.ip_address(address.split("%")[0])):
            raise Refused(f"{host} resolves to an address that is not public")
    if not addresses:
        raise Refused(f"{host} resolves to no address")
    return addresses


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to `address`, verifying the certificate for the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _connected(host: str, port: int, addresses: list[str], deadline: float) -> _Pinned:
    """A connection to the first checked address that answers before the deadline (an IPv6 address first where
    the resolver says so, then the next one: a function may have no IPv6 route)."""
    failure: OSError = OSError("no address")
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = _Pinned(host, port, address, remaining)
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            failure = error
            continue
        return connection
    raise failure


def post(url: str, body: bytes, headers: dict[str, str], local: bool) -> Outcome:
    """One attempt, ended at TIMEOUT_S however the receiver answers (a receiver that drips a byte at a time is cut
    off at the deadline, not at every read's timeout)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        if local and is_local_url(url):
            connection: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", parts.port,
                                                                                timeout=TIMEOUT_S)
        else:
            host, port = parts.hostname or "", parts.port or 443
            connection = _connected(host, port, resolve(host, port), deadline)
        cutoff = threading.Timer(max(0.0, deadline - time.monotonic()), _cut_off, (connection,))
        cutoff.start()
        try:
            connection.request("POST", path, body=body, headers={**headers, "Host": parts.netloc})
            response = connection.getresponse()
            response.read(MAX_RESPONSE)
            if time.monotonic() > deadline:
                return Outcome(None, "no answer within 10 s")
            return Outcome(response.status, None if 200 <= response.status < 300 else f"HTTP {response.status}")
        finally:
            cutoff.cancel()
            connection.close()
    except Refused as refused:
        return Outcome(None, str(refused))
    except (OSError, http.client.HTTPException) as error:
        if time.monotonic() >= deadline:
            return Outcome(None, "no answer within 10 s")
        return Outcome(None, f"{type(error).__name__}: no answer" if isinstance(error, TimeoutError) else
                       type(error).__name__)


def _cut_off(connection: http.client.HTTPConnection) -> None:
    """At the deadline: shut the socket, so the read in progress ends at once."""
    if connection.sock is not None:
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
