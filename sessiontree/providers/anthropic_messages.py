"""AnthropicProvider: Anthropic Messages through the official ``anthropic`` SDK (extra
``anthropic``).

The API key comes from ``api_key`` or ``ANTHROPIC_API_KEY`` (the SDK's own lookup).
The system prompt travels in its own field, tool results as ``tool_result`` blocks
with ``is_error`` (see ``providers.anthropic_wire``). Calls stream; cancellation,
errors and ``max_retries=0`` are described in ``providers.sdk_adapter``. An
``overloaded_error`` (HTTP 529, or an error event inside the stream) is retryable and
cools the provider down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessiontree._reasons import Reason
from sessiontree.providers import anthropic_wire
from sessiontree.providers.base import ModelRequest, ProviderError
from sessiontree.providers.pricing import Price, PriceTable
from sessiontree.providers.received import Received
from sessiontree.providers.sdk_adapter import DEFAULT_TIMEOUT, SdkAdapter


class AnthropicProvider(SdkAdapter):
    """A :class:`~sessiontree.Provider` for the Anthropic Messages API.

    Raises :class:`~sessiontree.InvalidInput` for bad arguments. The SDK is imported
    on first use.
    """

    sdk = "anthropic"

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str = "anthropic",
        api_key: str | None = None,
        base_url: str | None = None,
        local: bool | None = None,
        prices: Mapping[str, Price | Mapping[str, Any]] | None = None,
        price_table: PriceTable | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            name=name, model=model, base_url=base_url, local=local, prices=prices,
            price_table=price_table, timeout=timeout,
        )
        self.api_key = api_key

    def request_body(self, request: ModelRequest, model: str) -> dict[str, Any]:
        return anthropic_wire.request_body(request, model)

    def make_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=self.api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout,
        )

    async def open_stream(self, client: Any, body: dict[str, Any]) -> Any:
        return await client.messages.create(**body)

    def add(self, received: Received, item: dict[str, Any]) -> None:
        anthropic_wire.add_event(received, item)

    def map_error(self, exc: Exception) -> ProviderError | None:
        # The SDK finds no credentials only when it builds the request, and says so with
        # a TypeError: that is a missing key, not a crash worth restarting.
        if isinstance(exc, TypeError) and "authentication" in str(exc):
            return ProviderError(f"{self.name}: no credentials: {exc} (set ANTHROPIC_API_KEY "
                                 "or pass api_key)", retryable=False,
                                 reason=Reason.PROVIDER_AUTH, provider=self.name)
        return super().map_error(exc)

    def sdk_errors(self) -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
        import anthropic

        return (anthropic.APIStatusError, anthropic.APIResponseValidationError), (
            anthropic.APIConnectionError,)
