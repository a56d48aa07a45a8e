"""``stepstone serve`` (the JSON API and webhooks under uvicorn) and ``stepstone webhook``.

This is where the token and the webhook secrets are read from the environment; the web app
gets them as objects. ``serve`` refuses to start (exit 2) on a non-loopback ``--host`` without a
token, and (exit 4) when a binding's secret variable is unset or names a workflow the app lacks.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stepstone.cli.app import load_app
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.serve_parser import ENV_TOKEN, ENV_WEBHOOKS
from stepstone.cli.session import Session
from stepstone.cli.tracing import otel_observer
from stepstone.core.definitions import Registry
from stepstone.errors import InvalidArgument, UsageError, WebhookNotFound
from stepstone.web.bindings import (
    HookEntry,
    WebhookBinding,
    check_hook_name,
    load_hook_entries,
    save_hook_entries,
)
from stepstone.web.settings import ServeSettings

__all__ = ["cmd_serve", "cmd_webhook"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _hooks_path(ns: argparse.Namespace, session: Session) -> Path:
    given = getattr(ns, "webhooks", None) or session.env.get(ENV_WEBHOOKS)
    if given:
        return Path(given).expanduser()
    return Path(session.env.get("HOME") or Path.home()) / ".stepstone" / "webhooks.toml"


def _bindings(
    entries: list[HookEntry], registry: Registry | None, session: Session
) -> list[WebhookBinding]:
    bindings = []
    for e in entries:
        if registry is None or e.workflow not in registry.names():
            raise InvalidArgument(
                f"webhook {e.name!r} starts workflow {e.workflow!r}, which "
                + ("--app does not define" if registry is not None else "needs --app MODULE")
            )
        secret = session.env.get(e.secret_env)
        if not secret:
            raise InvalidArgument(
                f"webhook {e.name!r}: environment variable {e.secret_env} (its secret) is not set"
            )
        bindings.append(WebhookBinding(e.name, e.workflow, e.preset, secret))
    return bindings


def cmd_serve(ns: argparse.Namespace, session: Session) -> Output:
    """Serve until SIGINT/SIGTERM; once listening, ``serving on http://HOST:PORT`` goes to
    stderr (scripts and tests wait for that line)."""
    if not 0 <= ns.port <= 65535:
        raise InvalidArgument(f"--port {ns.port}: must be between 0 (any free port) and 65535")
    if ns.max_body_bytes < 1:
        raise InvalidArgument(f"--max-body-bytes {ns.max_body_bytes}: must be at least 1")
    token = ns.token or session.env.get(ENV_TOKEN) or None
    settings = ServeSettings(
        host=ns.host,
        port=ns.port,
        token=token,
        cors_origins=tuple(ns.cors_origin or ()),
        max_body_bytes=ns.max_body_bytes,
    )
    registry = load_app(ns.app) if ns.app else None
    hooks = _bindings(load_hook_entries(_hooks_path(ns, session), registry), registry, session)
    try:
        import uvicorn

        from stepstone.web.app import create_app
    except ImportError as exc:
        raise UsageError(
            f"serve needs the web extra ({exc.name} is missing): pip install 'stepstone[web]'"
        ) from None
    observer, flush = otel_observer(session.env) if ns.otel else (None, None)
    app = create_app(
        session.db, workflows=registry, settings=settings, hooks=hooks, tracing=observer or False
    )
    screen = session.screen

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # SIGINT and SIGTERM stop serving gracefully, and that is a clean exit (0), as for
            # `stepstone worker`; uvicorn would re-raise the signal once it stopped
            handlers = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in handlers.items():
                    signal.signal(sig, handler)

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1] if self.servers else ns.port
                names = ", ".join(h.name for h in hooks) or "none"
                screen.note(f"serving on http://{ns.host}:{port} (webhooks: {names})")

    config = uvicorn.Config(
        app,
        host=ns.host,
        port=ns.port,
        log_level="info" if session.verbose else "warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    try:
        Server(config).run()
    finally:
        if flush is not None:
            flush()
    return Output({"host": ns.host, "port": ns.port}, lambda s: s.note("stopped serving"))


def _entry_json(e: HookEntry, session: Session) -> dict[str, Any]:
    return {
        "name": e.name,
        "workflow": e.workflow,
        "preset": e.preset,
        "secret_env": e.secret_env,
        "secret_set": bool(session.env.get(e.secret_env)),
        "path": f"/hooks/{e.name}",
    }


def cmd_webhook(ns: argparse.Namespace, session: Session) -> Output:
    path = _hooks_path(ns, session)
    action = ns.webhook_command
    if action == "list":
        registry = load_app(ns.app) if getattr(ns, "app", None) else None
        rows = [_entry_json(e, session) for e in load_hook_entries(path, registry)]

        def human(screen: Screen) -> None:
            if not rows:
                screen.line(f"no webhooks (bindings file: {path})")
            for d in rows:
                unset = "" if d["secret_set"] else " (unset here)"
                screen.line(
                    f"{d['path']} -> {d['workflow']}  preset {d['preset']}, "
                    f"secret in ${d['secret_env']}{unset}"
                )

        return Output(rows, human)
    entries = {e.name: e for e in load_hook_entries(path)}
    name = check_hook_name(ns.name)
    if action == "remove":
        if entries.pop(name, None) is None:
            raise WebhookNotFound(name, str(path))
        save_hook_entries(path, list(entries.values()))
        return Output({"removed": name}, lambda s: s.line(f"removed webhook {name}"))
    if not ns.secret_env.replace("_", "").isalnum():
        raise InvalidArgument(f"--secret-env {ns.secret_env!r} is not a variable name")
    entry = HookEntry(name, ns.workflow, ns.secret_env, ns.preset)
    entries[name] = entry
    save_hook_entries(path, list(entries.values()))
    data = _entry_json(entry, session)
    return Output(
        data,
        lambda s: s.line(
            f"POST /hooks/{name} starts {ns.workflow} ({ns.preset} signatures; secret read "
            f"from ${ns.secret_env} by `stepstone serve`)"
        ),
    )
