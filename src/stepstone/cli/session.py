"""One invocation's global options (``--db``, ``--json``, ``-v``) and the client they open."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stepstone.cli.render import Screen

if TYPE_CHECKING:
    from stepstone.client import Client
    from stepstone.core.definitions import Registry

__all__ = ["Session"]


@dataclass
class Session:
    """``db`` is ``None`` for the embedded default store (which migrates itself on first use); an
    explicit URL or path is never migrated implicitly."""

    db: str | None
    json: bool = False
    verbose: int = 0
    screen: Screen = field(default_factory=Screen)

    def client(self, registry: Registry | None = None) -> Client:
        """A blocking client on the store; close it (``with session.client() as client:``)."""
        from stepstone.client import Client  # imported on use: `--help` stays fast

        return Client(self.db, workflows=registry)
