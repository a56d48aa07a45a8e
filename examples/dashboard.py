"""The dashboard: a run waits at a ``ctx.ask`` form; its page shows the form built from the
gate's JSON Schema, and the answer goes through the JSON API, as the page's own script sends it.

    python examples/dashboard.py            # runs through and stops
    python examples/dashboard.py --keep     # ... and keeps serving: open the printed URL

The script serves the app on a free local port (uvicorn in a thread), starts a refund that asks
for an amount and a reason, reads the run's page, sends an answer the schema refuses (422 naming
the path) and then one it takes, and finishes the run here. Needs the web extra
(``pip install 'stepstone[web]'``). In production:

    stepstone worker --app examples.dashboard
    stepstone serve --app examples.dashboard        # then open http://127.0.0.1:8420/
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn

from stepstone import Client, WorkflowContext, step, workflow
from stepstone.web.app import create_app

FORM = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0, "maximum": 500},
        "reason": {"enum": ["damaged", "late", "other"]},
    },
    "required": ["amount", "reason"],
}


@step
def pay_refund(order_id: str, amount: float) -> str:
    return f"refunded {amount:.2f} EUR on {order_id}"


@workflow
async def refund(ctx: WorkflowContext, order_id: str) -> str:
    answer = await ctx.ask(f"Refund {order_id}: how much?", kind="form", gate="refund", schema=FORM)
    return await pay_refund(order_id, answer.value["amount"])


class _Server(uvicorn.Server):
    """Tells when it listens (the script asked for any free port)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.listening.set()


def _post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A write as the dashboard sends it: JSON (the server's CSRF guard asks for it)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def main() -> None:
    db = f"sqlite:///{Path(tempfile.mkdtemp()) / 'dashboard.db'}"
    with Client(db, workflows=[refund]) as client:
        server = _Server(
            uvicorn.Config(create_app(db, workflows=[refund]), port=0, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        server.listening.wait(30)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        try:
            client.run_until_wait(refund, "ord-7", run_id="refund-ord-7")  # a worker would
            with urllib.request.urlopen(f"{base}/runs/refund-ord-7", timeout=30) as resp:
                page = resp.read().decode()
            fields = re.findall(r'data-path="\[&#34;answer&#34;, &#34;(\w+)&#34;\]"', page)
            print(f"the page of refund-ord-7 asks for: {fields}")
            signal = f"{base}/api/runs/refund-ord-7/signal"
            too_much = {"answer": {"amount": 900, "reason": "late"}}
            status, body = _post(signal, {"name": "refund", "payload": too_much})
            print(f"a refund of 900: {status} {body['error']['message']}")
            answer = {"answer": {"amount": 12.5, "reason": "late"}, "by": "ana"}
            status, body = _post(signal, {"name": "refund", "payload": answer})
            print(f"a refund of 12.5: {status}")
            print(f"run refund-ord-7: {client.run(refund, 'ord-7', run_id='refund-ord-7')}")
            if "--keep" in sys.argv:
                print(f"the dashboard: {base}/  (Ctrl-C stops)")
                thread.join()
        finally:
            server.should_exit = True
            thread.join(30)


if __name__ == "__main__":
    main()
