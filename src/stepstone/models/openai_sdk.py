"""OpenAI's chat API through the official SDK (``pip install 'stepstone[openai]'``).

The same requests and replies as :class:`~stepstone.models.openai.OpenAICompatibleProvider`
(which needs no SDK), sent by ``openai.AsyncOpenAI``: for those who want the SDK's transport
(HTTP/2 connection reuse, its proxies and certificate settings, organisation and project
headers). The SDK is imported when a provider is made, never by ``import stepstone``; its own
retries are off (``max_retries=0``) so that the step's RetryPolicy decides, honouring the
retry-after of the error. The SDK reads ``OPENAI_API_KEY`` itself when no ``api_key`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stepstone.core.llm import ModelReply, ModelRequest
from stepstone.errors import InvalidArgument, ModelError, ModelUnavailable
from stepstone.models.config import OPENAI_URL
from stepstone.models.openai import OpenAICompatibleProvider, error_for_status
from stepstone.models.openai import retry_after_s as _retry_after_s

__all__ = ["OpenAIProvider"]


class OpenAIProvider(OpenAICompatibleProvider):
    """OpenAI (or any compatible endpoint) via the ``openai`` SDK.

    >>> OpenAIProvider()                                       # OPENAI_API_KEY from the env
    >>> OpenAIProvider("http://127.0.0.1:8000/v1", api_key="test", json_schema=True)
    """

    def __init__(
        self,
        base_url: str = OPENAI_URL,
        *,
        api_key: str | None = None,
        name: str = "openai",
        timeout_s: float = 120.0,
        json_schema: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise InvalidArgument(
                "the openai provider's SDK transport needs the SDK: pip install 'stepstone[openai]'"
            ) from None
        super().__init__(
            base_url,
            api_key=api_key,
            name=name,
            timeout_s=timeout_s,
            json_schema=json_schema,
            headers=headers,
        )
        self._sdk = openai
        self._client = openai.AsyncOpenAI(
            api_key=api_key or None,
            base_url=self.base_url,
            max_retries=0,
            timeout=timeout_s,
            default_headers=dict(headers or {}) or None,
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.base_url!r}, name={self.name!r})"

    async def complete(self, request: ModelRequest) -> ModelReply:
        payload = self.payload(request)
        try:
            completion = await self._client.chat.completions.create(**payload)
        except self._sdk.APIStatusError as exc:
            raise self._status_error(exc) from None
        except self._sdk.APITimeoutError:
            raise ModelUnavailable(
                self.name, f"no answer from {self.base_url} in {self.timeout_s}s"
            ) from None
        except self._sdk.APIConnectionError as exc:
            raise ModelUnavailable(self.name, f"cannot reach {self.base_url}: {exc}") from None
        return self.reply(completion.model_dump(), request)

    def _status_error(self, exc: Any) -> ModelError:
        body = getattr(exc, "body", None)
        detail = body.get("message") if isinstance(body, Mapping) else None
        if detail is None and isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            detail = body["error"].get("message")
        detail = str(detail or getattr(exc, "message", "") or "")[:300]
        headers = getattr(getattr(exc, "response", None), "headers", None)
        return error_for_status(self.name, exc.status_code, detail, _retry_after_s(headers))
