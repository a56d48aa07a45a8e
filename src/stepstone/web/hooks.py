"""``POST /hooks/{name}``: verify a signed delivery, then start the bound workflow exactly once.

The signature is checked before anything touches the store: a wrong, missing or stale one is
answered 401 and only counted. A good one starts the workflow with the JSON body as its one
argument, under the run id ``hook-{name}-{delivery id}``: a redelivery names the same run and
starts nothing new (200, ``created: false``). The secret never leaves memory: not in responses,
not in logs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from stepstone.client import AsyncClient
from stepstone.core.routing import StartOptions
from stepstone.errors import DuplicateRun
from stepstone.web.bindings import WebhookBinding
from stepstone.web.http import HttpError, read_body
from stepstone.web.signatures import BadPayload, BadSignature, verify_delivery

__all__ = ["HookState", "receive_hook"]

log = logging.getLogger("stepstone.web.hooks")


@dataclass(slots=True)
class HookState:
    """A served hook and what it has seen since the server started."""

    binding: WebhookBinding
    started: int = 0
    redelivered: int = 0
    rejected: int = 0

    def json(self) -> dict[str, Any]:
        b = self.binding
        return {
            "name": b.name,
            "workflow": b.workflow,
            "preset": b.preset,
            "path": f"/hooks/{b.name}",
            "started": self.started,
            "redelivered": self.redelivered,
            "rejected": self.rejected,
        }


async def receive_hook(request: Request) -> Response:
    hooks: dict[str, HookState] = request.app.state.hooks
    name = request.path_params["name"]
    hook = hooks.get(name)
    if hook is None:
        raise HttpError(404, f"no webhook named {name!r}", "NotFound")
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    b = hook.binding
    try:
        delivery = verify_delivery(b.preset, b.secret, request.headers, body, now_s=time.time())
    except BadSignature as exc:
        hook.rejected += 1
        log.warning("webhook %s: delivery refused: %s", name, exc)
        raise HttpError(401, f"webhook {name}: {exc}", "BadSignature") from None
    except BadPayload as exc:
        hook.rejected += 1
        raise HttpError(400, f"webhook {name}: {exc}", "BadPayload") from None
    client: AsyncClient = request.app.state.client
    run_id = f"hook-{name}-{delivery.delivery_id}"
    options = StartOptions(run_id=run_id, on_conflict="raise")
    try:
        await client.start(b.workflow, delivery.payload, options=options)
    except DuplicateRun:
        hook.redelivered += 1
        return JSONResponse({"run_id": run_id, "created": False})
    hook.started += 1
    log.info("webhook %s: started run %s", name, run_id)
    return JSONResponse({"run_id": run_id, "created": True}, status_code=202)
