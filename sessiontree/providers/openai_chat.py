"""OpenAIProvider: OpenAI Chat Completions through the official ``openai`` SDK (extra
``openai``), and any OpenAI-compatible server through the same adapter.

Give ``base_url`` to talk to Ollama (``http://localhost:11434/v1``), vLLM, llama.cpp's
server or LM Studio; a provider whose base URL is on loopback is ``local`` (no consent
needed, its models free unless you price them). The API key comes from ``api_key`` or
``OPENAI_API_KEY``; a local server that wants none gets a placeholder.

Chat Completions, not the Responses API: every OpenAI-compatible server speaks Chat
Completions, while Responses is OpenAI's own, item-based and (by default) stateful on
the server -- it would need a second adapter with a different history model, for no
gain in what a session can do here.

Calls stream with ``stream_options.include_usage`` (see ``providers.sdk_adapter`` for
cancellation, errors and ``max_retries=0``). OpenAI proper takes the output cap as
``max_completion_tokens``; a compatible server gets ``max_tokens``, the field they all
understand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sessiontree.providers import openai_wire
from sessiontree.providers.base import ModelRequest
from sessiontree.providers.pricing import Price, PriceTable
from sessiontree.providers.received import Received
from sessiontree.providers.sdk_adapter import DEFAULT_TIMEOUT, SdkAdapter

LOCAL_API_KEY = "sessiontree-local"
"""The placeholder key sent to a server given by ``base_url`` when no key is set."""


class OpenAIProvider(SdkAdapter):
    """A :class:`~sessiontree.Provider` for Chat Completions (OpenAI or compatible).

    Raises :class:`~sessiontree.InvalidInput` for bad arguments. The SDK is imported
    on first use, so constructing one needs the ``openai`` extra only to call it.
    """

    sdk = "openai"

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        local: bool | None = None,
        prices: Mapping[str, Price | Mapping[str, Any]] | None = None,
        price_table: PriceTable | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_tokens_field: str | None = None,
    ) -> None:
        super().__init__(
            name=name or ("openai" if base_url is None else "openai-compatible"),
            model=model, base_url=base_url, local=local, prices=prices,
            price_table=price_table, timeout=timeout,
        )
        self.api_key = api_key
        self.organization = organization
        self.max_tokens_field = max_tokens_field or (
            "max_completion_tokens" if base_url is None else "max_tokens")

    def request_body(self, request: ModelRequest, model: str) -> dict[str, Any]:
        return openai_wire.request_body(request, model, max_tokens_field=self.max_tokens_field)

    def make_client(self) -> Any:
        import openai

        key = self.api_key
        if key is None and self.base_url is not None and not os.environ.get("OPENAI_API_KEY"):
            key = LOCAL_API_KEY
        return openai.AsyncOpenAI(
            api_key=key, base_url=self.base_url, organization=self.organization,
            max_retries=0, timeout=self.timeout,
        )

    async def open_stream(self, client: Any, body: dict[str, Any]) -> Any:
        return await client.chat.completions.create(**body)

    def add(self, received: Received, item: dict[str, Any]) -> None:
        openai_wire.add_chunk(received, item)

    def sdk_errors(self) -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
        import openai

        return (openai.APIStatusError, openai.APIResponseValidationError), (
            openai.APIConnectionError,)
