"""The OpenAPI 3.1 document of the API, made from the route table (``GET /openapi.json``)."""

from __future__ import annotations

import re
from typing import Any

from stepstone import __version__
from stepstone.web.api import ROUTES

__all__ = ["openapi_document"]

_PARAM = re.compile(r"{(\w+)}")
_ERROR = {"description": 'error: {"error": {"type", "message"}}'}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    rows = [(r.method, r.path, r.summary, r.handler.__name__) for r in ROUTES]
    rows.append(
        (
            "POST",
            "/hooks/{name}",
            "A signed webhook delivery: starts the bound workflow once per delivery id.",
            "receive_hook",
        )
    )
    for method, path, summary, name in rows:
        op: dict[str, Any] = {
            "operationId": name,
            "summary": summary,
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in _PARAM.findall(path)
            ],
            "responses": {"200": {"description": "ok"}, "4XX": _ERROR},
        }
        if method == "POST":
            op["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        if path.endswith("/events"):
            op["responses"]["200"] = {
                "description": "Server-Sent Events",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "stepstone", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
