"""One invocation's global options (``--db``, ``--json``, ``-v``) and the client they open."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from stepstone.cli.render import Screen
from stepstone.core.frozen import record

if TYPE_CHECKING:
    from stepstone.client import Client
    from stepstone.core.definitions import Registry
    from stepstone.core.llm import Models

__all__ = ["MODEL_VARIABLES", "Session", "models_configured"]

MODEL_VARIABLES = (
    "STEPSTONE_CONFIG",
    "STEPSTONE_LLM_",
    "STEPSTONE_OPENAI_",
    "STEPSTONE_ANTHROPIC_",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
)
"""The variables (names, or prefixes ending in ``_``) :func:`stepstone.models.load_models` reads
besides the config file (``tests/test_llm_cli.py`` checks the list against it)."""


def models_configured(env: Mapping[str, str]) -> bool:
    """Whether a config file or a variable sets anything :func:`~stepstone.models.load_models`
    reads; if not, it can only build the default (the offline scripted provider)."""
    if any(name.startswith(MODEL_VARIABLES) for name in env):
        return True
    home = env.get("HOME")
    if not home:
        return False
    return (Path(home) / ".stepstone" / "config.toml").exists()


@record
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
        models = self._run_models() if registry is not None else None
        return Client(self.db, workflows=registry, auto_migrate=auto_migrate, models=models)

    def _run_models(self) -> Models:
        """:meth:`models`, read now when anything configures them (so a bad config.toml or
        variable is exit 4 before a run starts), else built on a run's first ``ctx.llm``: the
        defaults cannot be wrong, and most runs never call a model (this keeps
        :mod:`stepstone.models` out of ``stepstone run -f``'s start-up)."""
        if models_configured(self.env):
            return self.models()
        return cast("Models", _Deferred(self.models))

    def models(self) -> Models:
        """The model providers ``ctx.llm`` calls, from ``~/.stepstone/config.toml`` and the
        ``STEPSTONE_LLM_*`` variables (the offline scripted provider when no key is set)."""
        from stepstone.models import load_models

        return load_models(self.env)


class _Deferred:
    """The models, built by ``build`` on first use (``ctx.llm`` reads ``resolve``/``price``)."""

    def __init__(self, build: Callable[[], Models]) -> None:
        self._build = build
        self._built: Models | None = None

    def __getattr__(self, name: str) -> Any:
        if self._built is None:
            self._built = self._build()
        return getattr(self._built, name)
