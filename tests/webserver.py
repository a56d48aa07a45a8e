"""A real uvicorn server in a thread of the test process, on a free port, for the web tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from stepstone.web.app import create_app

READY_TIMEOUT_S = 30.0


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.port = 0

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.servers:
            self.port = self.servers[0].sockets[0].getsockname()[1]
        self.ready.set()  # set on failure too: the test sees started is False

    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@contextlib.contextmanager
def serving(*args: Any, host: str = "127.0.0.1", **kwargs: Any) -> Iterator[str]:
    """``create_app(*args, **kwargs)`` served on ``host`` at a free port; yields its base URL."""
    app = create_app(*args, **kwargs)
    server = _Server(
        uvicorn.Config(app, host=host, port=0, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    assert server.ready.wait(READY_TIMEOUT_S), "server did not start"
    assert server.started, "server failed to start"
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.should_exit = True
        thread.join(READY_TIMEOUT_S)
