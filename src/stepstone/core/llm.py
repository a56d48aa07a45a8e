"""The model port: what a model call asks, what a provider answers, and how calls are routed.

``ctx.llm`` (see :mod:`stepstone.core.modelcalls`) turns one call into a :class:`ModelRequest`,
hands it to a :class:`ModelProvider` chosen by :class:`Models` (per-call ``model=``, else the
``tier=``'s model, else the default), and records the :class:`LLMResult` as a step. Providers live
outside ``core`` (:mod:`stepstone.models`: scripted, OpenAI-compatible, Anthropic) and are handed
to the worker or client that executes runs; ``core`` never does I/O itself.

Messages are plain JSON: ``{"role": "user" | "assistant" | "tool", "content": str, ...}``; an
assistant message may carry ``tool_calls`` and a tool message ``tool_call_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any, Literal, Protocol, runtime_checkable

from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument

__all__ = [
    "TIERS",
    "LLMResult",
    "ModelProvider",
    "ModelReply",
    "ModelRequest",
    "Models",
    "Price",
    "Tier",
    "ToolCall",
    "ToolSpec",
    "Usage",
]

Tier = Literal["fast", "balanced", "best"]
TIERS: tuple[Tier, ...] = ("fast", "balanced", "best")

Message = dict[str, Any]


@frozen
class Usage:
    """Tokens a call used, as the provider reported them (cache counts where it reports them)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None

    def __add__(self, other: Usage) -> Usage:
        def both(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            both(self.cache_read_tokens, other.cache_read_tokens),
            both(self.cache_write_tokens, other.cache_write_tokens),
        )


@frozen
class ToolCall:
    """A tool the model asked to call: its provider id, the tool's name and its arguments."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@frozen
class ToolSpec:
    """A tool offered to the model: name, description and the JSON Schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@frozen
class ModelRequest:
    """One request to a provider. ``model`` is the provider's own model name (routing prefix
    removed); ``response_schema`` the JSON Schema the reply should match, for providers that can
    constrain their output (others are asked in ``system`` and checked afterwards)."""

    messages: tuple[Message, ...]
    model: str
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    tools: tuple[ToolSpec, ...] = ()
    response_schema: dict[str, Any] | None = None


@frozen
class ModelReply:
    """A provider's answer: the text, the tool calls, the usage and the model that answered."""

    text: str
    model: str
    usage: Usage = Usage()
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: str | None = None


@runtime_checkable
class ModelProvider(Protocol):
    """One source of model replies. ``name`` prefixes its models in routing (``"openai"``:
    ``model="openai/gpt-4o-mini"``). ``complete`` raises the :class:`~stepstone.errors.ModelError`
    subclasses: rate limits and overloads (retried, honouring ``retry_after_s``), auth and
    invalid requests (never retried), unreachable (retried)."""

    name: str

    async def complete(self, request: ModelRequest) -> ModelReply: ...


@frozen
class Price:
    """USD per million tokens of one model (cache prices default to the input price)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def cost_usd(self, usage: Usage) -> float:
        read = self.cache_read_per_mtok
        write = self.cache_write_per_mtok
        total = (
            usage.input_tokens * self.input_per_mtok
            + usage.output_tokens * self.output_per_mtok
            + (usage.cache_read_tokens or 0) * (self.input_per_mtok if read is None else read)
            + (usage.cache_write_tokens or 0) * (self.input_per_mtok if write is None else write)
        )
        return round(total / 1_000_000, 10)


@frozen
class LLMResult:
    """What ``await ctx.llm(...)`` returns (and a replay returns, from the journal).

    ``text``: the reply's text. ``output``: the structured output (a Pydantic model instance or
    plain JSON, per ``output=``), None without ``output=``. ``tool_calls``: what the model asked
    to call. ``usage``: tokens. ``model``: the model that answered (``provider/model``).
    ``cost_usd``: from the price table (0.0 for a model without a price). ``latency_s``: the
    provider's time, repair turn included. ``turns``: provider calls made (2 after a repair).
    """

    text: str
    output: Any = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    model: str = ""
    cost_usd: float = 0.0
    latency_s: float = 0.0
    stop_reason: str | None = None
    turns: int = 1


class Models:
    """The providers a worker or client can call, and how a call picks one.

    ``model="openai/gpt-4o-mini"`` goes to the provider named ``openai`` with model
    ``gpt-4o-mini``; a model without a known prefix goes to ``default`` (the first provider when
    not given). ``tiers`` map ``fast``/``balanced``/``best`` to model names; ``default_model``
    is used when a call names neither. ``prices`` (by model name, with or without the prefix)
    price each call for the ledger.

    >>> Models([ScriptedProvider.from_file("replies.yaml")], tiers={"fast": "scripted/small"})
    """

    def __init__(
        self,
        providers: Sequence[ModelProvider],
        *,
        default: str | None = None,
        tiers: Mapping[str, str] | None = None,
        default_model: str | None = None,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        if not providers:
            raise InvalidArgument("Models needs at least one provider")
        self.providers = {p.name: p for p in providers}
        self.default = default if default is not None else providers[0].name
        if self.default not in self.providers:
            raise InvalidArgument(
                f"Models: default provider {self.default!r} is not one of "
                f"{', '.join(sorted(self.providers))}"
            )
        self.tiers = dict(tiers or {})
        for tier in self.tiers:
            if tier not in TIERS:
                raise InvalidArgument(f"Models: unknown tier {tier!r} (one of {', '.join(TIERS)})")
        self.default_model = default_model
        self.prices = dict(prices or {})

    def resolve(self, model: str | None, tier: str | None) -> tuple[ModelProvider, str]:
        """The provider and its own model name for a call's ``model=`` / ``tier=`` (a
        ``model=`` wins over a ``tier=``)."""
        name = model
        if name is None and tier is not None:
            if tier not in TIERS:
                raise InvalidArgument(f"ctx.llm: unknown tier {tier!r} (one of {', '.join(TIERS)})")
            name = self.tiers.get(tier)
            if name is None:
                raise InvalidArgument(
                    f"ctx.llm: tier {tier!r} has no model; set [llm.tiers] {tier} = ... in "
                    "~/.stepstone/config.toml or STEPSTONE_LLM_TIER_" + tier.upper()
                )
        if name is None:
            name = self.default_model or ""
        prefix, _, rest = name.partition("/")
        if rest and prefix in self.providers:
            return self.providers[prefix], rest
        return self.providers[self.default], name

    def price(self, provider: str, model: str) -> Price | None:
        return self.prices.get(f"{provider}/{model}") or self.prices.get(model)
