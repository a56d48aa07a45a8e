"""What ``serve`` is configured with: the bind, the token, CORS, the body limit; and the bind rule.

Built by the CLI (which reads ``--token`` or ``STEPSTONE_TOKEN``) or your own code, then handed
to :func:`stepstone.web.app.create_app`; nothing here reads the environment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from stepstone.errors import UsageError

__all__ = ["ServeSettings", "check_bind", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token (the CLI exits 2)."""
    if token is None and not is_loopback(host):
        raise UsageError(
            f"--host {host} is not a loopback address: give --token (or set STEPSTONE_TOKEN) so "
            "every route but /health asks for it"
        )
    if token is not None and len(token) < 16:
        raise UsageError("the token must be at least 16 characters")


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """``token``: required on every route but ``/health`` (and the signed ``/hooks``) when set,
    as ``Authorization: Bearer <token>`` or ``X-Stepstone-Token``. ``cors_origins``: origins
    allowed to call the API from a browser (none: CORS is off). ``max_body_bytes``: larger
    request bodies get 413. ``keepalive_s``: the longest silence on an event stream."""

    host: str = "127.0.0.1"
    port: int = 8420
    token: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1 << 20
    keepalive_s: float = 15.0
    """How long an event stream may stay silent before a ``: keepalive`` comment is sent."""

    def __post_init__(self) -> None:
        check_bind(self.host, self.token)
