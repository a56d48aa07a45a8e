"""The client: start, run, signal, cancel, pause, retry, fork and inspect runs.

``AsyncClient`` is the one implementation (its parts: running, operating, inspecting); ``Client``
exposes the same methods blocking, by running them on a private event loop thread. Apps, the CLI
and the dashboard all go through these methods.
"""

from stepstone.client.aio import AsyncClient
from stepstone.client.blocking import Client, RunHandle, Starter
from stepstone.client.running import AsyncRunHandle, AsyncStarter

__all__ = ["AsyncClient", "AsyncRunHandle", "AsyncStarter", "Client", "RunHandle", "Starter"]
