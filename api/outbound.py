"""Outbound HTTP for webhooks: which targets may be called, and a POST that cannot be held.

Target policy (`check_target`), applied when a subscription is saved and again before every
delivery:
- the scheme is http or https;
- the host is resolved, and every address it resolves to must be public: loopback,
  link-local (169.254.169.254, the cloud metadata address, included), private, shared,
  reserved, multicast and unspecified addresses are refused, IPv4 and IPv6 alike, and an
  IPv4 address inside an IPv6 one (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64) is
  judged as that IPv4 address. Numbers spelled in decimal, octal or hex (`2130706433`,
  `0177.0.0.1`) resolve as the system resolves them, so they are judged as what they are;
- `KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS` lets loopback and private addresses (10/8,
  172.16/12, 192.168/16, fc00::/7) through, for development and tests — never link-local,
  multicast, reserved or unspecified ones.

Transport (`post`): the connection goes to the address that was checked (no second lookup,
so a name cannot be re-pointed at an internal address between the check and the call — DNS
rebinding), while the Host header and TLS (SNI and the certificate check) use the name. Every
wait (connect, TLS, send, receive) is bounded by what is left of one wall-clock deadline for
the whole call, and at most `max_response_bytes` of the answer are read: only its status
line is kept, never the body.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# Error classes stored on a failed delivery (never the receiver's own words).
REFUSED_TARGET = "refused_target"
UNRESOLVABLE = "unresolvable"
CONNECT_FAILED = "connect_failed"
TLS_FAILED = "tls_failed"
TIMEOUT = "timeout"
BAD_RESPONSE = "bad_response"
HTTP_STATUS = "http_status"  # an answer that is not 2xx: its code is stored

URL_SAFE = "/%?=&:@!$'()*+,;~-._"  # kept as they are in the request line; others %-encoded

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class TargetRefused(Exception):
    """The URL may not be called; the message says why (shown to whoever subscribed)."""


class CallFailed(Exception):
    """The call did not produce an answer; `error_class` is one of the classes above."""

    def __init__(self, error_class: str):
        super().__init__(error_class)
        self.error_class = error_class


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`, all allowed) and what to say there."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver, as a connect would use it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why `address` may not be called, or None when it may."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = address_refusal(embedded, allow_private=allow_private)
        return f"{reason} (inside {address})" if reason else None
    if allow_private and any(address in network for network in PRIVATE_NETWORKS):
        return None
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    for kind, flagged in kinds:
        if flagged:
            return f"{kind} address {address}"
    return None


def check_target(url: str, *, allow_private: bool) -> Target:
    """The checked target of `url`; raises TargetRefused with the reason."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetRefused(f"not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs can receive webhooks")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("the URL has no host")
    try:
        host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise TargetRefused(f"the host {host} is not a valid name") from None
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise TargetRefused(f"the host {host} does not resolve") from None
    for address in addresses:
        reason = address_refusal(
            ipaddress.ip_address(address.split("%")[0]), allow_private=allow_private
        )
        if reason:
            raise TargetRefused(f"{host} resolves to a {reason}: webhooks only call public hosts")
    path = quote(parts.path or "/", safe=URL_SAFE) + (
        f"?{quote(parts.query, safe=URL_SAFE)}" if parts.query else ""
    )
    return Target(scheme, host, port, path, tuple(addresses))


def webhook_target(url: str) -> Target:
    """`check_target` with this deployment's policy (KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS)."""
    return check_target(url, allow_private=settings.KEYSTONE_WEBHOOK_ALLOW_PRIVATE_TARGETS)


def validate_webhook_url(url: str) -> None:
    """The subscription URL field's validator, so the API and the admin refuse alike."""
    try:
        webhook_target(url)
    except TargetRefused as refused:
        raise ValidationError(str(refused), code="refused_target") from None


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline_seconds: float,
    max_response_bytes: int,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """POST `body` to `target` at its checked addresses (the next one when a connection is
    refused), within one deadline; returns the answer's status code. Raises CallFailed when
    there is no answer within the deadline and the byte cap."""
    deadline = time.monotonic() + deadline_seconds
    lines = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    channel = _connected(target, deadline)
    try:
        if target.scheme == "https":
            channel.start_tls(ssl_context or ssl.create_default_context(), target.host)
        channel.send_all(request)
        return _status_code(channel.receive_status_line(max_response_bytes))
    finally:
        channel.close()


def _connected(target: Target, deadline: float) -> _Channel:
    """A connection to the first of the checked addresses that accepts one in time."""
    for address in target.addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        channel = _Channel(socket.socket(family, socket.SOCK_STREAM), deadline)
        try:
            channel.connect((address, target.port))
            return channel
        except CallFailed as failed:
            channel.close()
            if failed.error_class == TIMEOUT or address == target.addresses[-1]:
                raise
    raise CallFailed(CONNECT_FAILED)  # no address at all


def _status_code(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise CallFailed(BAD_RESPONSE)
    return int(parts[1])


class _Channel:
    """A non-blocking socket whose every wait is bounded by the call's deadline."""

    def __init__(self, sock: socket.socket, deadline: float):
        sock.setblocking(False)
        self.sock, self.deadline = sock, deadline
        self.selector = selectors.DefaultSelector()

    def close(self) -> None:
        self.selector.close()
        self.sock.close()

    def _wait(self, event: int) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise CallFailed(TIMEOUT)
        self.selector.register(self.sock, event)
        try:
            ready = self.selector.select(remaining)
        finally:
            self.selector.unregister(self.sock)
        if not ready:
            raise CallFailed(TIMEOUT)

    def connect(self, address: tuple[str, int]) -> None:
        try:
            self.sock.connect(address)
        except BlockingIOError:
            self._wait(selectors.EVENT_WRITE)
            error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise CallFailed(CONNECT_FAILED) from None
        except OSError:
            raise CallFailed(CONNECT_FAILED) from None

    def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self.sock = context.wrap_socket(
            self.sock, server_hostname=server_hostname, do_handshake_on_connect=False
        )
        while True:
            try:
                self.sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                self._wait(selectors.EVENT_READ)
            except ssl.SSLWantWriteError:
                self._wait(selectors.EVENT_WRITE)
            except (ssl.SSLError, OSError):
                raise CallFailed(TLS_FAILED) from None

    def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, ssl.SSLWantWriteError):
                self._wait(selectors.EVENT_WRITE)
                continue
            except ssl.SSLWantReadError:
                self._wait(selectors.EVENT_READ)
                continue
            except OSError:
                raise CallFailed(CONNECT_FAILED) from None
            view = view[sent:]

    def receive_status_line(self, max_bytes: int) -> bytes:
        received = b""
        while b"\r\n" not in received:
            if len(received) >= max_bytes:
                raise CallFailed(BAD_RESPONSE)
            try:
                chunk = self.sock.recv(min(4096, max_bytes - len(received)))
            except (BlockingIOError, ssl.SSLWantReadError):
                self._wait(selectors.EVENT_READ)
                continue
            except ssl.SSLWantWriteError:
                self._wait(selectors.EVENT_WRITE)
                continue
            except OSError:
                raise CallFailed(CONNECT_FAILED) from None
            if not chunk:
                raise CallFailed(BAD_RESPONSE)
            received += chunk
        return received.split(b"\r\n", 1)[0]
