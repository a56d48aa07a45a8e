"""The flags of ``stepstone serve`` and ``stepstone webhook`` (add, list, remove)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["ENV_TOKEN", "ENV_WEBHOOKS", "add_serve_commands"]

ENV_TOKEN = "STEPSTONE_TOKEN"
ENV_WEBHOOKS = "STEPSTONE_WEBHOOKS"

Command = Callable[[str, str], argparse.ArgumentParser]


def _webhooks_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--webhooks",
        metavar="FILE",
        help="the webhook bindings file (default: ~/.stepstone/webhooks.toml; "
        f"env: {ENV_WEBHOOKS})",
    )


def add_serve_commands(
    command: Command, app_option: Callable[..., None], common: argparse.ArgumentParser
) -> None:
    """Add ``serve`` and ``webhook`` through the parser's ``command(name, help)`` factory."""
    p = command(
        "serve",
        "serve the dashboard (http://HOST:PORT/), the JSON API (runs, events as Server-Sent "
        "Events, queues, workers, dead letters, schedules; OpenAPI at /openapi.json) and the "
        "signed webhooks (POST /hooks/NAME) until SIGINT/SIGTERM. Needs the web extra: "
        "pip install 'stepstone[web]'. Bound to 127.0.0.1 it needs no token; any other --host "
        "refuses to start without --token (exit 2). --app is needed to start runs (POST "
        "/api/runs and the webhooks)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8420, help="the port (default: 8420; 0: any free)")
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="required as 'Authorization: Bearer TOKEN' or X-Stepstone-Token on every route "
        "but /health and the signed /hooks; the dashboard asks for it once at /login "
        f"(at least 16 characters; env: {ENV_TOKEN})",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="an origin allowed to call the API from a browser (repeatable; default: none, "
        "CORS off)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="N",
        default=1 << 20,
        help="larger request bodies get 413 (default: 1048576)",
    )
    p.add_argument(
        "--otel",
        action="store_true",
        help="runs started here join the trace of the request's traceparent header "
        "(pip install 'stepstone[otel]'; exporters as for worker --otel)",
    )
    app_option(p, required=False)
    _webhooks_file(p)

    p = command(
        "webhook",
        "bind webhooks to workflows: POST /hooks/NAME on `stepstone serve` starts the workflow "
        "once per delivery; the secret stays in the environment variable named",
    )
    actions = p.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    a = actions.add_parser(
        "add", help="bind NAME to a workflow (replaces a binding of NAME)", parents=[common]
    )
    a.add_argument("name", metavar="NAME", help="the hook's name: POST /hooks/NAME")
    a.add_argument("--workflow", required=True, metavar="W", help="the workflow it starts")
    a.add_argument(
        "--secret-env",
        required=True,
        metavar="VAR",
        help="the environment variable `serve` reads the secret from (never the secret itself)",
    )
    a.add_argument(
        "--preset",
        choices=("stepstone", "github", "stripe"),
        default="stepstone",
        help="the signature headers to check (default: stepstone: X-Stepstone-Timestamp and "
        "X-Stepstone-Signature)",
    )
    _webhooks_file(a)
    a = actions.add_parser(
        "list", help="every binding (with the app: its @workflow(webhook=))", parents=[common]
    )
    _webhooks_file(a)
    app_option(a, required=False)
    a = actions.add_parser("remove", help="remove the binding NAME", parents=[common])
    a.add_argument("name", metavar="NAME")
    _webhooks_file(a)
