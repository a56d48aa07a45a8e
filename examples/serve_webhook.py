"""A signed webhook starts a workflow once per delivery; the JSON API shows and streams the run.

    python examples/serve_webhook.py

The script serves the app on a free local port (uvicorn in a thread), sends a signed delivery
twice (the second is a redelivery: it starts nothing new), runs the workflow here, reads the run
and its events over HTTP, and stops the server. Needs the web extra
(``pip install 'stepstone[web]'``). In production:

    export STEPSTONE_WEBHOOK_ORDERS_SECRET=...       # the secret the sender signs with
    stepstone worker --app examples.serve_webhook
    stepstone serve --app examples.serve_webhook     # POST /hooks/orders, GET /api/runs, ...
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn

from stepstone import Client, WorkflowContext, step, workflow
from stepstone.web import WebhookBinding, sign
from stepstone.web.app import create_app

SECRET = "example-secret-never-printed"


@step
def reserve(sku: str, qty: int) -> str:
    return f"reserved {qty} x {sku}"


@workflow(webhook="orders")
def on_order(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    ctx.emit("received", {"order": payload["order"]})
    return reserve(payload["sku"], payload["qty"])


class _Server(uvicorn.Server):
    """Tells when it listens, and on which port (the script asked for any free one)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.listening.set()


def _request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
        return json.loads(text) if resp.headers.get_content_type() == "application/json" else text


def main() -> None:
    db = f"sqlite:///{Path(tempfile.mkdtemp()) / 'webhook.db'}"
    with Client(db, workflows=[on_order]) as client:
        hook = WebhookBinding("orders", "on_order", "stepstone", SECRET)
        app = create_app(db, workflows=[on_order], hooks=[hook])
        server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        server.listening.wait(30)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        try:
            body = json.dumps({"order": "A-17", "sku": "espresso-beans", "qty": 2}).encode()
            headers = {
                **sign(SECRET, body, timestamp=int(time.time())),
                "X-Stepstone-Delivery": "delivery-0001",
            }
            first = _request(f"{base}/hooks/orders", body, headers)
            again = _request(f"{base}/hooks/orders", body, headers)  # the sender retried
            print(f"first delivery: {first}; redelivery: {again}")
            run_id = first["run_id"]
            client.run(on_order, {}, run_id=run_id)  # a worker would; here, in this process
            run = _request(f"{base}/api/runs/{run_id}")
            print(f"run {run_id} is {run['state']}: {run['output']}")
            events = _request(f"{base}/api/runs/{run_id}/events")
            print("events:", [line for line in events.splitlines() if line.startswith("event:")])
        finally:
            server.should_exit = True
            thread.join(30)


if __name__ == "__main__":
    main()
