"""Signing the dashboard in where ``serve`` has a token: a browser cannot put the token in a
header of a page it navigates to, so ``/login`` takes it once and keeps it in a cookie.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it) and ``Secure`` behind HTTPS. It stands in for the token on reads only as far as the
guard is concerned: a write still needs ``Content-Type: application/json`` or the token header,
so the CSRF rule holds for a signed-in browser too. The login page and the static files hold no
data and are served without the token.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from stepstone.errors import InvalidArgument
from stepstone.web.http import HttpError, read_json
from stepstone.web.pages import render
from stepstone.web.settings import ServeSettings

__all__ = ["COOKIE", "login", "login_page", "logout"]

COOKIE = "stepstone_token"


def _settings(request: Request) -> ServeSettings:
    settings: ServeSettings = request.app.state.settings
    return settings


async def login_page(request: Request) -> Response:
    """The sign-in form (nothing to sign in to without a token: off to the runs)."""
    if _settings(request).token is None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html")


async def login(request: Request) -> Response:
    """``{"token": T}``: 204 with the cookie set when T is the server's token, else 401."""
    settings = _settings(request)
    given = (await read_json(request, settings.max_body_bytes)).get("token")
    if not isinstance(given, str):
        raise InvalidArgument("login needs token (a string)")
    if settings.token is None or not hmac.compare_digest(given.encode(), settings.token.encode()):
        raise HttpError(401, "wrong token", "Unauthorized")
    response = Response(status_code=204)
    response.set_cookie(
        COOKIE,
        given,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
