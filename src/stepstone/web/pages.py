"""The dashboard: server-rendered HTML pages over the same client calls as the JSON API.

Pages only read; every button and form of the pages writes through the JSON API from the
page's script (``static/dashboard.js``: ``fetch`` with ``Content-Type: application/json``), so
the app's CSRF guard covers the dashboard as it covers any other caller. Templates are Jinja2
with autoescaping on; data for the script travels in ``data-*`` attributes, never in inline
script, and the pages are served with a Content-Security-Policy that allows only this app's own
script and styles.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from stepstone.client import AsyncClient
from stepstone.client.shapes import (
    description_json,
    queue_json,
    run_json,
    schedule_json,
    worker_json,
)
from stepstone.core.model import RunState
from stepstone.errors import InvalidArgument, RunNotFound
from stepstone.web.charts import step_bars
from stepstone.web.forms import form_for
from stepstone.web.http import label_filter, status_for

__all__ = ["CSP", "page_routes", "render", "templates"]

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
STATES = tuple(s.value for s in RunState)
_PAGE_SIZE = 50


def templates() -> jinja2.Environment:
    """The dashboard's templates (shipped in the package), autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, dur=_dur, pretty=_pretty, short=_short, fromjson_text=_text)
    return env


def _when(text: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` UTC (the script shows it in local time)."""
    if not text:
        return "-"
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(option: str) -> str:
    """A JSON option as shown: a string without its quotes, anything else as JSON."""
    value = json.loads(option)
    return value if isinstance(value, str) else option


def _client(request: Request) -> AsyncClient:
    client: AsyncClient = request.app.state.client
    return client


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page ``name`` with ``context``, served with the dashboard's CSP."""
    env: jinja2.Environment = request.app.state.templates
    html = env.get_template(name).render(request=request, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})


def _duration_s(run: dict[str, Any]) -> float | None:
    start, end = run.get("started_at") or run.get("created_at"), run.get("finished_at")
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


async def runs_page(request: Request) -> Response:
    """Runs, newest first, filtered by state, workflow, queue and labels; ``q`` finds one by id.
    The counts above the list come from ``/api/queues`` (the page's script), so that counting a
    large store's active runs never holds the list up."""
    q, client = request.query_params, _client(request)
    search = (q.get("q") or "").strip()
    notice = None
    if search:
        try:
            run = await client.get(search)
        except RunNotFound:
            notice = f"no run has the id {search!r}"
        else:
            return RedirectResponse(f"/runs/{run.run_id}", status_code=303)
    states = [s for s in q.getlist("state") if s]
    workflow = (q.get("workflow") or "").strip()
    queue = (q.get("queue") or "").strip()
    labels = [x for x in q.getlist("label") if x.strip()]
    filters = {"state": states, "workflow": workflow, "queue": queue, "label": labels}
    try:
        runs = await client.list(
            state=states or None,
            workflow=workflow or None,
            queue=queue or None,
            labels=label_filter(labels, "label filter") or None,
            limit=_PAGE_SIZE,
            before_run_id=q.get("before") or None,
        )
    except InvalidArgument as exc:
        notice, runs = str(exc), []
    rows = [{**j, "duration_s": _duration_s(j)} for j in map(run_json, runs)]
    more = [(k, v) for k, v in q.multi_items() if k not in ("before", "q") and v]
    return render(
        request,
        "runs.html",
        status=404 if search and notice else 200,
        runs=rows,
        filters=filters,
        states=STATES,
        notice=notice,
        search=search,
        older=rows[-1]["run_id"] if len(rows) == _PAGE_SIZE else None,
        more=more,
        paged=bool(q.get("before")),
    )


async def run_page(request: Request) -> Response:
    """One run: state, input and output, the step timeline, the waiting question's form,
    signals, children, the controls, and its events as they happen."""
    client = _client(request)
    try:
        desc = await client.describe(request.path_params["run_id"])
    except RunNotFound as exc:
        return render(request, "missing.html", status=404, message=str(exc))
    data = description_json(desc)
    holds = await client.signal_waits(desc.run)
    bars = step_bars(desc.run, desc.steps, datetime.now(UTC))
    return render(
        request,
        "run.html",
        run=data,
        forms=[form_for(h) for h in holds],
        bars=bars,
        duration_s=_duration_s(data),
        finished=desc.run.is_finished,
    )


def spark_points(
    series: dict[str, list[int]] | None, width: float = 120, height: float = 24
) -> str:
    """An SVG polyline's points for runs finished per slice (completed + failed), oldest on
    the left; a flat line at the bottom when nothing finished."""
    if not series:
        return f"0,{height - 2:g} {width:g},{height - 2:g}"
    totals = [c + f for c, f in zip(series["completed"], series["failed"], strict=True)]
    top = max(max(totals), 1)
    step = width / max(len(totals) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (n / top) * (height - 4):.1f}" for i, n in enumerate(totals)
    )


async def queues_page(request: Request) -> Response:
    """Queues: what each holds, its throughput (last minute and hour) and limits."""
    client = _client(request)
    minute = {s.queue: s for s in await client.queue_stats(window_s=60)}
    hour = {s.queue: s for s in await client.queue_stats(window_s=3600)}
    history = await client.queue_throughput(window_s=3600, buckets=60)
    specs = {s.name: s for s in await client.queues()}
    names = sorted(set(minute) | set(hour) | set(specs))
    rows = [
        {
            **queue_json(n, minute.get(n), specs.get(n)),
            "per_hour": hour[n].completed_recently if n in hour else 0,
            "failed_hour": hour[n].failed_recently if n in hour else 0,
            "spark": spark_points(history.get(n)),
        }
        for n in names
    ]
    return render(request, "queues.html", queues=rows)


async def workers_page(request: Request) -> Response:
    now = datetime.now(UTC)
    workers = [worker_json(w, now) for w in await _client(request).workers()]
    return render(request, "workers.html", workers=workers)


async def dead_letters_page(request: Request) -> Response:
    q = request.query_params
    runs = await _client(request).dead_letters(
        workflow=q.get("workflow") or None, queue=q.get("queue") or None, limit=200
    )
    return render(request, "dead_letters.html", runs=[run_json(r) for r in runs])


async def schedules_page(request: Request) -> Response:
    schedules = [schedule_json(s) for s in await _client(request).schedules()]
    return render(request, "schedules.html", schedules=schedules)


async def page_error(request: Request, exc: Exception) -> Response:
    """An error on a page is a page (the JSON API answers JSON)."""
    status = status_for(exc)
    message = str(exc) if status != 500 else "internal error (see the server log)"
    return render(request, "missing.html", status=status, message=message)


def page_routes() -> list[BaseRoute]:
    """The dashboard's routes and its static files."""
    static = StaticFiles(directory=HERE / "static")
    return [
        Route("/", runs_page, methods=["GET"]),
        Route("/runs/{run_id}", run_page, methods=["GET"]),
        Route("/queues", queues_page, methods=["GET"]),
        Route("/workers", workers_page, methods=["GET"]),
        Route("/dead-letters", dead_letters_page, methods=["GET"]),
        Route("/schedules", schedules_page, methods=["GET"]),
        Mount("/static", app=static, name="static"),
    ]
