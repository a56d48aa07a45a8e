"""The JSON API over the client: runs (list, describe, timeline, events as Server-Sent Events,
start, signal, cancel, pause, unpause, retry, fork), queues, workers, dead letters, schedules.

Each route is one row of :data:`ROUTES` (method, path, summary, handler): the app and the
OpenAPI document are both made from it. Shapes are those of ``--json`` (stepstone.client.shapes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from stepstone.client import AsyncClient
from stepstone.client.options import OPTION_NAMES
from stepstone.client.shapes import (
    description_json,
    event_json,
    queue_json,
    run_json,
    schedule_json,
    timeline_json,
    worker_json,
)
from stepstone.core.model import EventRecord
from stepstone.core.routing import StartOptions
from stepstone.errors import InvalidArgument
from stepstone.web.http import label_filter, read_json
from stepstone.web.settings import ServeSettings

__all__ = ["ROUTES", "ApiRoute"]

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    summary: str
    handler: Handler


def _client(request: Request) -> AsyncClient:
    client: AsyncClient = request.app.state.client
    return client


def _settings(request: Request) -> ServeSettings:
    settings: ServeSettings = request.app.state.settings
    return settings


def _int(request: Request, name: str, default: int, lo: int = 0, hi: int = 10_000) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"query parameter {name}={text!r} is not an integer") from None
    if not lo <= value <= hi:
        raise InvalidArgument(f"query parameter {name}={value} must be in [{lo}, {hi}]")
    return value


async def _body(request: Request) -> dict[str, Any]:
    return await read_json(request, _settings(request).max_body_bytes)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def list_runs(request: Request) -> Response:
    q = request.query_params
    states = q.getlist("state") or None
    labels = label_filter(q.getlist("label"), "query parameter label")
    runs = await _client(request).list(
        state=states,
        workflow=q.get("workflow"),
        queue=q.get("queue"),
        parent_run_id=q.get("parent"),
        limit=_int(request, "limit", 50, 1, 1000),
        before_run_id=q.get("before"),
        labels=labels or None,
    )
    return JSONResponse({"runs": [run_json(r) for r in runs]})


async def describe_run(request: Request) -> Response:
    desc = await _client(request).describe(request.path_params["run_id"])
    return JSONResponse(description_json(desc))


async def run_timeline(request: Request) -> Response:
    entries = await _client(request).timeline(request.path_params["run_id"])
    return JSONResponse({"timeline": [timeline_json(e) for e in entries]})


async def run_events(request: Request) -> Response:
    """Server-Sent Events: one ``id:``/``event:``/``data:`` message per event, then ``end``.
    ``Last-Event-ID`` (or ``?after=``) resumes after that event; ``?follow=false`` stops at the
    last event stored; ``?system=true`` adds the engine's own events (claims, waits...)."""
    client = _client(request)
    run_id = request.path_params["run_id"]
    last = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not last.isdigit():
        raise InvalidArgument(f"Last-Event-ID {last!r} is not an event id")
    follow = request.query_params.get("follow", "true") != "false"
    system = request.query_params.get("system") == "true"
    await client.get(run_id)  # 404 before the stream starts

    keepalive_s = _settings(request).keepalive_s

    async def stream() -> AsyncIterator[str]:
        events = cast(
            AsyncGenerator[EventRecord, None],
            client.events(run_id, follow=follow, after_id=int(last), include_system=system),
        )
        nxt: asyncio.Future[EventRecord] | None = None
        try:
            while True:
                # a comment line while the run is quiet keeps proxies from closing the stream
                # and finds a client that went away
                nxt = asyncio.ensure_future(anext(events))
                while not (await asyncio.wait({nxt}, timeout=keepalive_s))[0]:
                    yield ": keepalive\n\n"
                try:
                    event = nxt.result()
                except StopAsyncIteration:
                    break
                data = json.dumps(event_json(event))
                yield f"id: {event.event_id}\nevent: {event.kind}\ndata: {data}\n\n"
        finally:  # the client went away (or the run ended): stop following
            if nxt is not None and not nxt.done():
                nxt.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                    await nxt
            await events.aclose()
        run = await client.get(run_id)
        yield f"event: end\ndata: {json.dumps({'state': run.state.value})}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


_START_FIELDS = {"workflow", "args", "kwargs"}


async def start_run(request: Request) -> Response:
    """``{"workflow": W, "args": [...], "kwargs": {...}, "run_id": ..., "queue": ...}``: any
    start option of ``StartOptions`` may be given beside the arguments."""
    body = await _body(request)
    unknown = sorted(set(body) - _START_FIELDS - OPTION_NAMES)
    if unknown:
        raise InvalidArgument(f"start: unknown fields {', '.join(unknown)}")
    workflow, args, kwargs = body.get("workflow"), body.get("args", []), body.get("kwargs", {})
    if not isinstance(workflow, str) or not isinstance(args, list) or not isinstance(kwargs, dict):
        raise InvalidArgument("start needs workflow (a string), args (a list), kwargs (an object)")
    opts = {k: v for k, v in body.items() if k in OPTION_NAMES}
    if "start_at" in opts:
        raise InvalidArgument("start: give delay_s, not start_at")
    try:
        options = StartOptions(**opts)
    except TypeError as exc:
        raise InvalidArgument(f"start: {exc}") from None
    client = _client(request)
    handle = await client.start(workflow, *args, options=options, **kwargs)
    run = await client.get(handle.run_id)
    return JSONResponse(run_json(run), status_code=201)


async def signal_run(request: Request) -> Response:
    body = await _body(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise InvalidArgument("signal needs name (a string) and may have payload and buffer")
    run_id = request.path_params["run_id"]
    client = _client(request)
    await client.signal(run_id, name, body.get("payload"), buffer=bool(body.get("buffer")))
    return JSONResponse(run_json(await client.get(run_id)), status_code=202)


def _control(action: str) -> Handler:
    async def control(request: Request) -> Response:
        body = await _body(request)
        client, run_id = _client(request), request.path_params["run_id"]
        if action == "cancel":
            run = await client.cancel(run_id, body.get("reason"))
        elif action == "pause":
            run = await client.pause(run_id)
        elif action == "unpause":
            run = await client.unpause(run_id)
        else:
            run = await client.retry(run_id, fresh=bool(body.get("fresh")))
        return JSONResponse(run_json(run))

    control.__name__ = f"{action}_run"
    return control


async def fork_run(request: Request) -> Response:
    """``{"from_seq": N, "patch": {"3": value}, "run_id": optional new id}``."""
    body = await _body(request)
    from_seq, patch = body.get("from_seq"), body.get("patch") or {}
    if not isinstance(from_seq, int) or not isinstance(patch, dict):
        raise InvalidArgument("fork needs from_seq (an integer); patch is {seq: value}")
    try:
        patched = {int(k): v for k, v in patch.items()}
    except ValueError:
        raise InvalidArgument("fork patch keys must be step numbers") from None
    run = await _client(request).fork(
        request.path_params["run_id"], from_seq, patch=patched, new_run_id=body.get("run_id")
    )
    return JSONResponse(run_json(run), status_code=201)


async def list_queues(request: Request) -> Response:
    client = _client(request)
    window_s = float(_int(request, "window_s", 60, 1, 86_400))
    stats = {s.queue: s for s in await client.queue_stats(window_s=window_s)}
    specs = {q.name: q for q in await client.queues()}
    names = sorted(set(stats) | set(specs))
    return JSONResponse({"queues": [queue_json(n, stats.get(n), specs.get(n)) for n in names]})


async def queue_throughput(request: Request) -> Response:
    window_s = float(_int(request, "window_s", 3600, 60, 31 * 86_400))
    buckets = _int(request, "buckets", 60, 1, 1440)
    series = await _client(request).queue_throughput(window_s=window_s, buckets=buckets)
    return JSONResponse({"window_s": window_s, "buckets": buckets, "queues": series})


async def list_workers(request: Request) -> Response:
    now = datetime.now(UTC)
    workers = await _client(request).workers()
    return JSONResponse({"workers": [worker_json(w, now) for w in workers]})


async def list_dead_letters(request: Request) -> Response:
    q = request.query_params
    runs = await _client(request).dead_letters(
        workflow=q.get("workflow"), queue=q.get("queue"), limit=_int(request, "limit", 100, 1)
    )
    return JSONResponse({"runs": [run_json(r) for r in runs]})


async def purge_dead_letters(request: Request) -> Response:
    """``{"older_than_s": N}``: delete the failed runs that finished more than N seconds ago."""
    older = (await _body(request)).get("older_than_s")
    if isinstance(older, bool) or not isinstance(older, int | float) or older < 0:
        raise InvalidArgument("purge needs older_than_s (a number of seconds, at least 0)")
    purged = await _client(request).purge(older_than_s=float(older), state="failed")
    return JSONResponse({"purged": purged})


async def list_schedules(request: Request) -> Response:
    schedules = await _client(request).schedules()
    return JSONResponse({"schedules": [schedule_json(s) for s in schedules]})


async def get_schedule(request: Request) -> Response:
    info = await _client(request).get_schedule(request.path_params["name"])
    return JSONResponse(schedule_json(info))


def _schedule_action(action: str) -> Handler:
    async def act(request: Request) -> Response:
        client, name = _client(request), request.path_params["name"]
        if action == "trigger":
            run_id = await client.trigger_schedule(name)
            return JSONResponse({"run_id": run_id}, status_code=201)
        if action == "pause":
            info = await client.pause_schedule(name)
        else:
            info = await client.resume_schedule(name)
        return JSONResponse(schedule_json(info))

    act.__name__ = f"{action}_schedule"
    return act


async def list_hooks(request: Request) -> Response:
    """The webhooks served: name, workflow, preset and counts (never the secret)."""
    hooks = request.app.state.hooks
    return JSONResponse({"hooks": [h.json() for h in hooks.values()]})


R = ApiRoute
ROUTES: tuple[ApiRoute, ...] = (
    R("GET", "/health", "Liveness: 200 when the server answers (no token needed).", health),
    R(
        "GET",
        "/api/runs",
        "Runs, newest first (state, workflow, queue, label=k=v, parent, limit, before).",
        list_runs,
    ),
    R("POST", "/api/runs", "Start a run: workflow, args, kwargs and start options.", start_run),
    R(
        "GET",
        "/api/runs/{run_id}",
        "A run with its steps, signals, children and failures.",
        describe_run,
    ),
    R(
        "GET",
        "/api/runs/{run_id}/timeline",
        "Everything that happened to the run, in order.",
        run_timeline,
    ),
    R(
        "GET",
        "/api/runs/{run_id}/events",
        "The run's events as Server-Sent Events; Last-Event-ID resumes.",
        run_events,
    ),
    R("POST", "/api/runs/{run_id}/signal", "Send a signal: name, payload, buffer.", signal_run),
    R("POST", "/api/runs/{run_id}/cancel", "Cancel the run (reason).", _control("cancel")),
    R("POST", "/api/runs/{run_id}/pause", "Pause the run.", _control("pause")),
    R("POST", "/api/runs/{run_id}/unpause", "Unpause the run.", _control("unpause")),
    R(
        "POST",
        "/api/runs/{run_id}/retry",
        "Retry a failed run (fresh: start anew).",
        _control("retry"),
    ),
    R("POST", "/api/runs/{run_id}/fork", "Fork from step from_seq (patch, run_id).", fork_run),
    R("GET", "/api/queues", "Queues: counts, throughput and limits.", list_queues),
    R(
        "GET",
        "/api/queues/throughput",
        "Runs finished per queue over time (window_s, buckets).",
        queue_throughput,
    ),
    R("GET", "/api/workers", "The worker registry.", list_workers),
    R("GET", "/api/dead-letters", "Runs that failed for good.", list_dead_letters),
    R(
        "POST",
        "/api/dead-letters/purge",
        "Delete failed runs older than older_than_s, with their history.",
        purge_dead_letters,
    ),
    R("GET", "/api/schedules", "Every schedule.", list_schedules),
    R("GET", "/api/schedules/{name}", "One schedule.", get_schedule),
    R("POST", "/api/schedules/{name}/pause", "Pause a schedule.", _schedule_action("pause")),
    R("POST", "/api/schedules/{name}/resume", "Resume a schedule.", _schedule_action("resume")),
    R(
        "POST",
        "/api/schedules/{name}/trigger",
        "Start a run of the schedule now.",
        _schedule_action("trigger"),
    ),
    R("GET", "/api/hooks", "The webhooks served and their counts (never secrets).", list_hooks),
)
