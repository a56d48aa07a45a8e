"""What a skill lends its runs: filled prompts (``ctx.prompt``) and the run's files
(``ctx.artifact``). The engine only sees this port; :mod:`stepstone.desk` implements it over a
skill's folder and the runs folder, and attaches it to the skill's workflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["NOTIFY_EVENT", "NOTIFY_LEVELS", "Prompt", "SkillResources"]

NOTIFY_EVENT = "inbox.notify"
"""The event kind ``ctx.notify`` emits; the store takes a launched run's inbox summary from it."""

NOTIFY_LEVELS = ("info", "warning", "error")


class Prompt(str):
    """A filled prompt: the text itself (a ``str``) with its front matter's ``tier`` and
    ``max_tokens`` (None when the file does not set them) and the prompt's ``name``."""

    name: str
    tier: str | None
    max_tokens: int | None

    def __new__(
        cls, text: str, *, name: str, tier: str | None = None, max_tokens: int | None = None
    ) -> Prompt:
        self = super().__new__(cls, text)
        self.name, self.tier, self.max_tokens = name, tier, max_tokens
        return self

    @property
    def text(self) -> str:
        return str.__str__(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "text": self.text,
            "tier": self.tier,
            "max_tokens": self.max_tokens,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Prompt:
        return cls(
            data["text"],
            name=data["name"],
            tier=data.get("tier"),
            max_tokens=data.get("max_tokens"),
        )


class SkillResources(Protocol):
    """A skill's prompts and where its runs write files."""

    def fill_prompt(self, name: str, variables: Mapping[str, Any]) -> Prompt:
        """Load ``prompts/NAME.md`` and substitute ``$var``; a missing variable raises
        :class:`~stepstone.errors.PromptError` naming it and the file."""
        ...

    def write_artifact(self, run_id: str, path: str, content: str | bytes) -> str:
        """Write ``content`` to ``path`` inside the run's folder atomically; the absolute path."""
        ...
