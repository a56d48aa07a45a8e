"""Requests that carry a trace context (``traceparent``) make it current while they are served."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from stepstone.core.observe import Observer

__all__ = ["JoinTrace"]

_HEADERS = (b"traceparent", b"tracestate")


class JoinTrace:
    """ASGI middleware: a request's W3C trace headers become the current trace context, so the
    runs it starts join the caller's trace (plain ASGI: the context reaches the handler)."""

    def __init__(self, app: ASGIApp, observer: Observer) -> None:
        self.app, self.observer = app, observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in _HEADERS
        }
        if scope["type"] != "http" or not carrier:
            await self.app(scope, receive, send)
            return
        with self.observer.joined(carrier):
            await self.app(scope, receive, send)
