"""The ASGI app of ``stepstone serve``: the JSON API, the webhooks, OpenAPI, the dashboard, and
their guard.

The guard, in order, for every request: the token (when one is set: every route but
``/health``, the signed ``/hooks`` and the dashboard's sign-in page and static files; a browser
signed in at ``/login`` carries it in a cookie, and a page asked for without it is sent
there), then CSRF (a write must be JSON or carry the token
header: a browser form cannot send either across origins without a CORS preflight, which is
off unless ``cors_origins`` allows it), then the Host header on a loopback bind (a DNS
rebinding page cannot borrow the local server).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from stepstone.client import AsyncClient
from stepstone.client.base import StoreLike, WorkflowsLike
from stepstone.core.observe import Observer
from stepstone.errors import StepstoneError
from stepstone.telemetry import as_observer
from stepstone.web.api import ROUTES
from stepstone.web.bindings import WebhookBinding
from stepstone.web.hooks import HookState, receive_hook
from stepstone.web.http import HttpError, error_response
from stepstone.web.login import COOKIE, login, login_page, logout
from stepstone.web.openapi import openapi_document
from stepstone.web.pages import page_error, page_routes, templates
from stepstone.web.settings import ServeSettings, is_loopback
from stepstone.web.tracing import JoinTrace

__all__ = ["TOKEN_HEADER", "create_app"]

TOKEN_HEADER = "x-stepstone-token"
_OPEN = ("/health", "/login")  # no data behind them; nor behind /static/
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def _given_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get(TOKEN_HEADER) or request.cookies.get(COOKIE)


def _is_page(request: Request) -> bool:
    """A dashboard page (HTML), not the API: an unsigned browser is sent to /login."""
    path = request.url.path
    api = path.startswith("/api/") or path in ("/openapi.json", "/health")
    return request.method == "GET" and not api


class _Guard(BaseHTTPMiddleware):
    def __init__(self, app: Any, settings: ServeSettings) -> None:
        super().__init__(app)
        self.settings = settings

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            self._check(request)
        except HttpError as exc:
            if exc.status == 401 and _is_page(request):
                return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
            return error_response(exc)
        return await call_next(request)

    def _check(self, request: Request) -> None:
        path, s = request.url.path, self.settings
        if path.startswith("/hooks/"):
            return  # a hook is authenticated by its signature
        open_ = path in _OPEN or path.startswith("/static/")
        token = _given_token(request)
        if (
            s.token is not None
            and not open_
            and (token is None or not hmac.compare_digest(token.encode(), s.token.encode()))
        ):
            raise HttpError(401, "missing or wrong token", "Unauthorized")
        if request.method in _WRITES and request.headers.get(TOKEN_HEADER) is None:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise HttpError(
                    415,
                    "a write needs Content-Type: application/json (or the X-Stepstone-Token "
                    "header)",
                    "CSRF",
                )
        if is_loopback(s.host) and s.token is None:
            host = request.headers.get("host", "").rsplit(":", 1)[0]
            if host and host not in _LOCAL_HOSTS:
                raise HttpError(403, f"Host {host!r} is not this machine", "Forbidden")


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


def create_app(
    store: StoreLike = None,
    *,
    workflows: WorkflowsLike = None,
    settings: ServeSettings | None = None,
    hooks: Iterable[WebhookBinding] = (),
    client_factory: Callable[[], AsyncClient] | None = None,
    tracing: bool | Observer = False,
) -> Starlette:
    """The ASGI app; serve it with uvicorn (``stepstone serve`` does).

    The client is opened when the app starts (its lifespan) on ``store`` with ``workflows``
    (needed to start runs and hook runs by name), or made by ``client_factory``; it is closed
    when the app stops.

    >>> app = create_app("sqlite:///runs.db", workflows=my_app, hooks=[binding])
    >>> uvicorn.run(app, host="127.0.0.1", port=8420)

    ``tracing`` (``stepstone[otel]``): runs started through the app (the API, webhooks) join
    the trace of the request's ``traceparent`` header (see :class:`~stepstone.AsyncClient`).
    """
    settings = settings or ServeSettings()
    observer = as_observer(tracing)
    states = {h.name: HookState(h) for h in hooks}

    def make_client() -> AsyncClient:
        if client_factory is not None:
            return client_factory()
        return AsyncClient(store, workflows=workflows, tracing=observer or False)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = make_client()
        app.state.client = client
        try:
            yield
        finally:
            await client.close()

    routes: list[BaseRoute] = [Route(r.path, r.handler, methods=[r.method]) for r in ROUTES]
    routes.append(Route("/hooks/{name}", receive_hook, methods=["POST"]))
    routes.append(Route("/openapi.json", _openapi, methods=["GET"]))
    routes.extend(page_routes())
    routes.append(Route("/login", login_page, methods=["GET"]))
    routes.append(Route("/login", login, methods=["POST"]))
    routes.append(Route("/logout", logout, methods=["POST"]))
    middleware = [Middleware(_Guard, settings=settings)]
    if observer is not None:
        middleware.insert(0, Middleware(JoinTrace, observer=observer))
    if settings.cors_origins:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["content-type", "authorization", TOKEN_HEADER, "last-event-id"],
            ),
        )

    async def on_error(request: Request, exc: Exception) -> Response:
        if _is_page(request):
            return await page_error(request, exc)
        return error_response(exc)

    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        # StepstoneError and HttpError are answers (404, 409, 422...); anything else is a 500
        exception_handlers={StepstoneError: on_error, HttpError: on_error, Exception: on_error},
    )
    app.state.settings = settings
    app.state.hooks = states
    app.state.templates = templates()
    return app
