"""One invocation's global options (``--db``, ``--json``, ``-v``) and the client they open."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stepstone.cli.render import Screen

if TYPE_CHECKING:
    from stepstone.client import Client
    from stepstone.core.definitions import Registry
    from stepstone.core.llm import Models

__all__ = ["Session"]


@dataclass
class Session:
    """``db`` is ``None`` for the embedded default store (which migrates itself on first use). A
    named SQLite file is created and migrated by the commands that write runs (``start``,
    ``run``, ``worker``); every other command refuses a missing or unmigrated store (exit 6)."""

    db: str | None
    json: bool = False
    verbose: int = 0
    screen: Screen = field(default_factory=Screen)
    env: Mapping[str, str] = field(default_factory=dict)
    """The process environment (only the CLI reads it; commands take what they need here)."""
    command: str = ""
    format: str = "stepstone"
    """``cpf``: print checkpointflow's run envelope (``--format cpf``)."""

    def client(self, registry: Registry | None = None, *, create: bool = False) -> Client:
        """A blocking client on the store; close it (``with session.client() as client:``).
        ``create``: an SQLite file is created and migrated if need be (commands that start
        runs); otherwise only the embedded default migrates itself."""
        from stepstone.client import Client  # imported on use: `--help` stays fast

        auto_migrate = None if create or self.db is None else False
        # a client given the app's code may execute its runs: it gets the configured models
        models = self.models() if registry is not None else None
        return Client(self.db, workflows=registry, auto_migrate=auto_migrate, models=models)

    def models(self) -> Models:
        """The model providers ``ctx.llm`` calls, from ``~/.stepstone/config.toml`` and the
        ``STEPSTONE_LLM_*`` variables (the offline scripted provider when no key is set)."""
        from stepstone.models import load_models

        return load_models(self.env)
