"""Model providers for ``ctx.llm``: offline scripted replies, OpenAI-compatible HTTP, Anthropic.

Each implements :class:`~stepstone.core.llm.ModelProvider`; a
:class:`~stepstone.core.llm.Models` holds the ones a worker or client may call, with tiers and
prices. :func:`load_models` builds it from ``~/.stepstone/config.toml`` and ``STEPSTONE_*``
variables (see :mod:`stepstone.models.config`):

>>> from stepstone.models import Models, ScriptedProvider
>>> client = Client(models=Models([ScriptedProvider.from_file("replies.yaml")]))

The Anthropic and OpenAI SDKs are imported only when an :class:`AnthropicProvider` or an
:class:`OpenAIProvider` (the OpenAI-compatible chat API through the official SDK) is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stepstone.core.llm import (
    LLMResult,
    ModelProvider,
    ModelReply,
    ModelRequest,
    Models,
    Price,
    ToolCall,
    ToolSpec,
    Usage,
)
from stepstone.models.config import (
    DEFAULT_PRICES,
    ModelConfig,
    build_models,
    load_model_config,
    load_models,
)
from stepstone.models.openai import OpenAICompatibleProvider
from stepstone.models.scripted import ScriptedProvider, ScriptedReply

if TYPE_CHECKING:
    from stepstone.models.anthropic import AnthropicProvider
    from stepstone.models.openai_sdk import OpenAIProvider


def __getattr__(name: str) -> Any:
    if name == "AnthropicProvider":
        from stepstone.models.anthropic import AnthropicProvider

        return AnthropicProvider
    if name == "OpenAIProvider":
        from stepstone.models.openai_sdk import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(f"module 'stepstone.models' has no attribute {name!r}")


__all__ = [
    "DEFAULT_PRICES",
    "AnthropicProvider",
    "LLMResult",
    "ModelConfig",
    "ModelProvider",
    "ModelReply",
    "ModelRequest",
    "Models",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Price",
    "ScriptedProvider",
    "ScriptedReply",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "build_models",
    "load_model_config",
    "load_models",
]
