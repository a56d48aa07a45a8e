"""Model configuration: ``~/.stepstone/config.toml`` and ``STEPSTONE_*`` variables -> Models.

Read at the edge only (the CLI, a worker's entry point, or your own ``main``), and passed down:
``Worker(url, workflows=app, models=load_models(env=os.environ))``. Nothing here reads the
process environment by itself: the caller hands ``env`` in. The file::

    [llm]
    provider = "openai"             # scripted | openai | anthropic (default: see below)
    model = "gpt-4o-mini"           # the model of a call that names neither model= nor tier=
    script = "~/replies.yaml"       # the scripted provider's replies

    [llm.openai]                    # any OpenAI-compatible endpoint
    base_url = "http://127.0.0.1:11434/v1"
    api_key_env = "OPENAI_API_KEY"  # the variable holding the key (never the key in the file)
    json_schema = true              # the server constrains output to a JSON Schema
    sdk = true                      # through the official SDK: pip install 'stepstone[openai]'

    [llm.anthropic]
    base_url = "https://api.anthropic.com"

    [llm.tiers]
    fast = "openai/gpt-4o-mini"
    best = "anthropic/claude-sonnet-4-5"

    [llm.prices."gpt-4o-mini"]     # USD per million tokens; overrides the built-in table
    input = 0.15
    output = 0.60
    cache_read = 0.075

Variables win over the file: ``STEPSTONE_LLM_PROVIDER``, ``STEPSTONE_LLM_MODEL``,
``STEPSTONE_LLM_SCRIPT``, ``STEPSTONE_LLM_TIER_FAST`` / ``_BALANCED`` / ``_BEST``,
``STEPSTONE_OPENAI_BASE_URL``, ``STEPSTONE_OPENAI_API_KEY`` (else ``OPENAI_API_KEY``),
``STEPSTONE_OPENAI_SDK`` (1/0),
``STEPSTONE_ANTHROPIC_BASE_URL``, ``STEPSTONE_CONFIG`` (another file). With no provider named,
``anthropic`` is used when ``ANTHROPIC_API_KEY`` is set, ``openai`` when an OpenAI base URL or
key is, else the offline ``scripted`` provider — so examples and tests run anywhere.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepstone.core.llm import TIERS, ModelProvider, Models, Price
from stepstone.errors import InvalidArgument

__all__ = ["DEFAULT_PRICES", "ModelConfig", "build_models", "load_model_config", "load_models"]

PROVIDERS = ("scripted", "openai", "anthropic")
OPENAI_URL = "https://api.openai.com/v1"

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "claude-3-5-haiku-latest": Price(0.80, 4.00, 0.08, 1.00),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10, 1.25),
    "claude-sonnet-4-5": Price(3.00, 15.00, 0.30, 3.75),
    "claude-opus-4-1": Price(15.00, 75.00, 1.50, 18.75),
}
"""Published list prices (USD per million tokens) of a few common models; ``[llm.prices]``
in the config overrides or extends them. A model without a price costs 0.0 in the ledger."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The model settings, as read from the config file and the environment."""

    provider: str = "scripted"
    model: str | None = None
    script: str | None = None
    openai_base_url: str = OPENAI_URL
    openai_api_key: str | None = field(default=None, repr=False)
    openai_json_schema: bool = False
    openai_sdk: bool = False
    anthropic_base_url: str | None = None
    anthropic_api_key: str | None = field(default=None, repr=False)
    tiers: Mapping[str, str] = field(default_factory=dict)
    prices: Mapping[str, Price] = field(default_factory=dict)


def load_model_config(env: Mapping[str, str], path: str | Path | None = None) -> ModelConfig:
    """Read ``path`` (default ``STEPSTONE_CONFIG`` or ``$HOME/.stepstone/config.toml``, if it
    exists) and the ``STEPSTONE_*`` variables of ``env``. A bad file or value is an
    InvalidArgument naming the file and the key."""
    if path is None:
        path = env.get("STEPSTONE_CONFIG") or (
            Path(env["HOME"]) / ".stepstone" / "config.toml" if env.get("HOME") else None
        )
    data: dict[str, Any] = {}
    where = str(path)
    if path is not None and Path(path).expanduser().exists():
        try:
            data = tomllib.loads(Path(path).expanduser().read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"{where}: {exc}") from None
    llm = _table(data.get("llm", {}), f"{where}: [llm]")
    openai = _table(llm.get("openai", {}), f"{where}: [llm.openai]")
    anthropic = _table(llm.get("anthropic", {}), f"{where}: [llm.anthropic]")
    tiers = {k: str(v) for k, v in _table(llm.get("tiers", {}), f"{where}: [llm.tiers]").items()}
    for tier in tiers:
        if tier not in TIERS:
            raise InvalidArgument(f"{where}: [llm.tiers] {tier}: not one of {', '.join(TIERS)}")
    for tier in TIERS:
        if env.get(f"STEPSTONE_LLM_TIER_{tier.upper()}"):
            tiers[tier] = env[f"STEPSTONE_LLM_TIER_{tier.upper()}"]
    prices = dict(DEFAULT_PRICES)
    for model, entry in _table(llm.get("prices", {}), f"{where}: [llm.prices]").items():
        prices[model] = _price(entry, f"{where}: [llm.prices.{model!r}]")
    key_env = str(openai.get("api_key_env", "OPENAI_API_KEY"))
    openai_key = env.get("STEPSTONE_OPENAI_API_KEY") or env.get(key_env)
    openai_url = env.get("STEPSTONE_OPENAI_BASE_URL") or openai.get("base_url")
    anthropic_key = env.get("ANTHROPIC_API_KEY")
    provider = env.get("STEPSTONE_LLM_PROVIDER") or llm.get("provider")
    if provider is None:
        provider = "anthropic" if anthropic_key else "openai" if openai_url or openai_key else None
    provider = provider or "scripted"
    if provider not in PROVIDERS:
        raise InvalidArgument(
            f"llm provider {provider!r} (STEPSTONE_LLM_PROVIDER or [llm] provider): "
            f"not one of {', '.join(PROVIDERS)}"
        )
    return ModelConfig(
        provider=provider,
        model=env.get("STEPSTONE_LLM_MODEL") or llm.get("model"),
        script=env.get("STEPSTONE_LLM_SCRIPT") or llm.get("script"),
        openai_base_url=str(openai_url or OPENAI_URL),
        openai_api_key=openai_key,
        openai_json_schema=bool(openai.get("json_schema", False)),
        openai_sdk=_flag(env.get("STEPSTONE_OPENAI_SDK"), openai.get("sdk", False)),
        anthropic_base_url=env.get("STEPSTONE_ANTHROPIC_BASE_URL") or anthropic.get("base_url"),
        anthropic_api_key=anthropic_key,
        tiers=tiers,
        prices=prices,
    )


def _flag(text: str | None, default: object) -> bool:
    """An on/off setting: the variable when set (1/true/yes/on, else off), else the file's."""
    if text is None or text == "":
        return bool(default)
    return text.strip().lower() in ("1", "true", "yes", "on")


def build_models(config: ModelConfig) -> Models:
    """The :class:`Models` a config describes: its provider first (the default), then any
    other provider it has what it needs for (``model="openai/..."`` reaches it by name)."""
    from stepstone.models.openai import OpenAICompatibleProvider
    from stepstone.models.scripted import ScriptedProvider

    providers: dict[str, ModelProvider] = {}
    if config.provider == "anthropic" or config.anthropic_api_key:
        from stepstone.models.anthropic import AnthropicProvider

        try:
            providers["anthropic"] = AnthropicProvider(
                api_key=config.anthropic_api_key, base_url=config.anthropic_base_url
            )
        except InvalidArgument:
            if config.provider == "anthropic":
                raise
    if config.provider == "openai" or config.openai_api_key:
        kind = OpenAICompatibleProvider
        if config.openai_sdk:
            from stepstone.models.openai_sdk import OpenAIProvider

            kind = OpenAIProvider
        providers["openai"] = kind(
            config.openai_base_url,
            api_key=config.openai_api_key,
            json_schema=config.openai_json_schema,
        )
    if config.script:
        providers["scripted"] = ScriptedProvider.from_file(config.script)
    elif config.provider == "scripted":
        providers["scripted"] = ScriptedProvider(source="no script (set STEPSTONE_LLM_SCRIPT)")
    ordered = [
        providers[config.provider],
        *(p for n, p in providers.items() if n != config.provider),
    ]
    return Models(
        ordered,
        default=config.provider,
        tiers=config.tiers,
        default_model=config.model,
        prices=config.prices,
    )


def load_models(env: Mapping[str, str], path: str | Path | None = None) -> Models:
    """:func:`build_models` of :func:`load_model_config`: what a worker's entry point calls.

    >>> Worker(url, workflows=app, models=load_models(os.environ)).run()
    """
    return build_models(load_model_config(env, path))


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: expected a table")
    return value


def _price(entry: Any, where: str) -> Price:
    table = _table(entry, where)
    unknown = set(table) - {"input", "output", "cache_read", "cache_write"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}")
    try:
        values = {k: None if v is None else float(v) for k, v in table.items()}
    except (TypeError, ValueError):
        raise InvalidArgument(f"{where}: prices must be numbers (USD per million tokens)") from None
    return Price(
        values.get("input") or 0.0,
        values.get("output") or 0.0,
        values.get("cache_read"),
        values.get("cache_write"),
    )
