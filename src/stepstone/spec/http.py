"""The ``api`` step's executor: one HTTP call, refused when it (or a redirect) leads inward.

>>> call_api("GET", "http://169.254.169.254/latest/meta-data/")  # doctest: +ELLIPSIS
Traceback (most recent call last):
stepstone.errors.BlockedAddress: http://169.254.169.254/latest/meta-data/: host ... refused ...

Every address the host resolves to is checked (:func:`blocked_reason`): loopback, private,
link-local (cloud metadata), multicast, unspecified, reserved, shared (CGNAT) and other
non-public addresses are refused unless the host is in ``allow_hosts``. The connection goes to
the checked address itself, never through a second lookup (a DNS rebinding cannot swap it), with
the original ``Host`` header and, for https, the certificate verified against the host name.
Redirects are followed here, each new URL checked the same way. Standard library only.

This module knows nothing of the engine: the YAML compiler calls it inside a checkpointed step.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from stepstone.core.frozen import frozen
from stepstone.errors import ApiCallFailed, ApiTimeout, BlockedAddress, InvalidArgument

__all__ = ["ApiResult", "blocked_reason", "call_api", "check_addresses"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@frozen
class ApiResult:
    """The response: ``headers`` with lower-case names (repeated ones joined by ``", "``),
    ``body_text`` decoded (the declared charset, else UTF-8), ``json`` the parsed body when it
    is JSON (else ``None``), ``url`` the one that answered (after redirects)."""

    status: int
    headers: dict[str, str]
    body_text: str
    json: Any | None
    url: str


def blocked_reason(address: str) -> str | None:
    """Why an api step may not call ``address`` (an IP literal), or ``None`` when it is public.

    >>> blocked_reason("169.254.169.254")
    'link-local (cloud metadata)'
    >>> blocked_reason("::ffff:10.0.0.1")
    'private (IPv4-mapped)'
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and (why := _reason(embedded)):
            return f"{why} (IPv4-mapped)" if ip.ipv4_mapped else f"{why} (embedded in {ip})"
    return _reason(ip)


def _reason(ip: Address) -> str | None:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata)" if ip.version == 4 else "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "private"
    if ip.version == 4 and ip in _SHARED:
        return "shared (carrier-grade NAT)"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public (special-purpose)"
    return None


def check_addresses(
    url: str, host: str, addresses: Collection[str], *, redirected_from: str | None = None
) -> None:
    """Raise :class:`BlockedAddress` for the first of ``addresses`` (what ``host`` resolved
    to) that an api step may not call."""
    for address in addresses:
        if why := blocked_reason(address):
            raise BlockedAddress(url, host, address, why, redirected_from)


def call_api(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    timeout_s: float = 30.0,
    allow_hosts: Collection[str] = (),
    max_redirects: int = 5,
) -> ApiResult:
    """Send one request and return the response, whatever its status.

    ``body`` (unless ``None``) is sent as JSON, with ``Content-Type: application/json`` unless
    ``headers`` name one. ``timeout_s`` bounds the connect and each read. Redirects (301, 302,
    303, 307, 308) are followed up to ``max_redirects``; 303, and 301/302 of a POST, continue
    as GET without the body, and credentials (``Authorization``, ``Cookie``) are not sent on to
    another host. ``allow_hosts``: names, IP literals or ``host:port`` that may be called even
    though they resolve to a refused address.

    Raises :class:`InvalidArgument` (a malformed URL or header, a scheme other than http or
    https), :class:`BlockedAddress`, :class:`ApiTimeout` or :class:`ApiCallFailed` (no
    response: resolution, connection or TLS failed, too many redirects).
    """
    method = method.upper()
    if not method.isalpha():
        raise InvalidArgument(f"api step: method {method!r} is not an HTTP method")
    allowed = {_host_key(entry) for entry in allow_hosts}
    send = {k: v for k, v in (headers or {}).items()}
    payload = None
    if body is not None:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        if not any(k.lower() == "content-type" for k in send):
            send["Content-Type"] = "application/json"
    redirected_from: str | None = None
    for _ in range(max_redirects + 1):
        result = _exchange(method, url, send, payload, timeout_s, allowed, redirected_from)
        location = result.headers.get("location")
        if result.status not in _REDIRECTS or not location:
            return result
        status = result.status
        target = urljoin(url, location)
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, payload = "GET", None
            send = {k: v for k, v in send.items() if k.lower() != "content-type"}
        if urlsplit(target).netloc.lower() != urlsplit(url).netloc.lower():
            send = {k: v for k, v in send.items() if k.lower() not in _CREDENTIALS}
        redirected_from, url = url, target
    raise ApiCallFailed(url, f"more than {max_redirects} redirects; stopped before following")


def _host_key(entry: str) -> str:
    """``host`` or ``host:port`` as allow_hosts compares them: lower case, IPv6 unbracketed."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host + rest
    return entry


def _exchange(
    method: str,
    url: str,
    headers: dict[str, str],
    payload: bytes | None,
    timeout_s: float,
    allowed: set[str],
    redirected_from: str | None,
) -> ApiResult:
    """One request on one connection to a checked address."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        via = f" (a redirect from {redirected_from})" if redirected_from else ""
        raise InvalidArgument(f"{url}{via}: only http and https URLs can be called, not {scheme!r}")
    try:
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError as e:
        raise InvalidArgument(f"{url}: {e}") from None
    if not host:
        raise InvalidArgument(f"{url}: the URL names no host")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ApiCallFailed(url, f"cannot resolve host {host!r}: {e.strerror}") from e
    targets = [(info[0], info[4]) for info in infos]
    if host not in allowed and f"{host}:{port}" not in allowed:
        check_addresses(url, host, [str(a[0]) for _, a in targets], redirected_from=redirected_from)
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    conn = _Pinned(host, port, targets, timeout_s, scheme == "https")
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        found: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            found[key] = f"{found[key]}, {value}" if key in found else value
        charset = response.headers.get_content_charset() or "utf-8"
        return _result(response.status, found, raw, charset, url)
    except TimeoutError as e:
        raise ApiTimeout(url, timeout_s) from e
    except (OSError, http.client.HTTPException) as e:  # before ValueError: TLS errors are both
        raise ApiCallFailed(url, f"{type(e).__name__}: {e}") from e
    except ValueError as e:  # a header name or value that cannot be sent
        raise InvalidArgument(f"{url}: {e}") from e
    finally:
        conn.close()


def _result(status: int, headers: dict[str, str], raw: bytes, charset: str, url: str) -> ApiResult:
    try:
        text = raw.decode(charset, "replace")
    except LookupError:  # an unknown charset name
        text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    return ApiResult(status, headers, text, parsed, url)


class _Pinned(http.client.HTTPConnection):
    """A connection to addresses already checked: no second DNS lookup, TLS verified against
    the host name."""

    def __init__(
        self,
        host: str,
        port: int,
        targets: Sequence[tuple[socket.AddressFamily, Any]],
        timeout_s: float,
        tls: bool,
    ) -> None:
        super().__init__(host, port, timeout=timeout_s)
        self._targets, self._tls = targets, tls
        self.default_port = 443 if tls else 80  # the Host header leaves the default port out

    def connect(self) -> None:
        error: OSError | None = None
        for family, address in self._targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(address)
                break
            except OSError as e:
                sock.close()
                error = e
        else:
            assert error is not None
            raise error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock
