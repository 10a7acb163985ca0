"""What the OpenAI and Anthropic adapters share: the model and its price, the event
loop their SDK's async client runs on, streaming with cancellation, error mapping.

A call streams (``stream: true``) and folds each event into a
:class:`~sessiontree.providers.received.Received`. When the session is cancelled the
call's task is cancelled at once (``providers.event_loop``): the stream is closed
before ``complete`` returns, no further tokens are read, and the reply returned holds
what was received so far, so its usage is charged (``stop_reason="cancelled"``).

The SDK client is made with ``max_retries=0``: the SDKs' own retries would hide 429s
and 5xx from the scheduler, which owns back-pressure for the whole tree
(``supervision.provider_failures``). Every failure leaves as a
:class:`~sessiontree.providers.base.ProviderError` (see ``providers.failures``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from sessiontree._cancellation import CancelToken
from sessiontree._errors import InvalidInput
from sessiontree._reasons import Reason
from sessiontree.providers import failures
from sessiontree.providers.base import ModelReply, ModelRequest, ProviderError
from sessiontree.providers.event_loop import LoopThread
from sessiontree.providers.pricing import FREE, Price, PriceTable
from sessiontree.providers.received import Received

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0
"""Seconds the SDK waits on a request before it fails as a connection error: long,
because a streamed reply of many tokens may legitimately take minutes."""


def is_loopback(base_url: str | None) -> bool:
    """True when ``base_url`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if not base_url:
        return False
    host = urlparse(base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SdkAdapter:
    """Base of the SDK adapters. Subclasses give the wire format and the SDK calls."""

    sdk = ""

    def __init__(
        self,
        *,
        name: str,
        model: str | None,
        base_url: str | None,
        local: bool | None,
        prices: Mapping[str, Price | Mapping[str, Any]] | None,
        price_table: PriceTable | None,
        timeout: float,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInput("a provider needs a non-empty name")
        if model is not None and (not isinstance(model, str) or not model):
            raise InvalidInput("model must be a non-empty str")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidInput("timeout must be > 0 seconds")
        self.name = name
        self.model = model
        self.base_url = base_url
        self.local = is_loopback(base_url) if local is None else bool(local)
        table = price_table or (PriceTable() if self.local else PriceTable.default())
        self.prices = table.merged(prices) if prices else table
        self.timeout = float(timeout)
        self._client: Any = None
        self._loop = LoopThread(f"sessiontree-provider-{name}", on_close=self._close_client)

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r}{where})"

    # -- what the runtime sees ------------------------------------------------------
    def resolve_model(self, model: str) -> str:
        """The session's model, or this provider's default for ``"default"``."""
        if model in ("", "default") and self.model:
            return self.model
        return model

    def price(self, model: str) -> Price | None:
        """The price of ``model`` (None: unknown). A local provider's models are free
        unless a price was given for them."""
        found = self.prices.price(self.resolve_model(model))
        if found is None and self.local:
            return FREE
        return found

    def complete(self, request: ModelRequest, cancel: CancelToken) -> ModelReply:
        model = self.resolve_model(request.model)
        if not model or model == "default":
            raise ProviderError(f"{self.name}: no model named (pass model= to the provider "
                                "or to create_session)", retryable=False,
                                reason=Reason.PROVIDER_BAD_REQUEST, provider=self.name)
        cancel.raise_if_cancelled()
        body = self.request_body(request, model)
        try:
            received = self._loop.run(lambda: self._stream(body), cancel)
        except ProviderError:
            raise
        except Exception as exc:
            mapped = self.map_error(exc)
            if mapped is None:
                raise  # not the provider's failure: a crash, supervision restarts the run
            raise mapped from exc
        return received.reply(request, self.price(model))

    def close(self) -> None:
        """Close the client and stop the event loop thread; the next call starts them
        again."""
        self._loop.close()

    # -- the call, on the loop ------------------------------------------------------
    async def _stream(self, body: dict[str, Any]) -> Received:
        received = Received()
        if self._client is None:
            try:
                self._client = self.make_client()
            except Exception as exc:  # no API key, bad base URL, ...
                raise ProviderError(f"{self.name}: cannot make the {self.sdk} client: {exc}",
                                    retryable=False, reason=Reason.PROVIDER_AUTH,
                                    provider=self.name) from exc
        stream: Any = None
        try:
            stream = await self.open_stream(self._client, body)
            async for item in stream:
                self.add(received, item.to_dict() if hasattr(item, "to_dict") else dict(item))
        except asyncio.CancelledError:
            received.cancelled = True  # the session was cancelled: keep what arrived
        finally:
            if stream is not None:
                await stream.close()
        return received

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- per SDK ----------------------------------------------------------------------
    def request_body(self, request: ModelRequest, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def make_client(self) -> Any:
        raise NotImplementedError

    async def open_stream(self, client: Any, body: dict[str, Any]) -> Any:
        raise NotImplementedError

    def add(self, received: Received, item: dict[str, Any]) -> None:
        raise NotImplementedError

    def sdk_errors(self) -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
        """(the SDK's status errors, its connection errors)."""
        raise NotImplementedError

    def map_error(self, exc: Exception) -> ProviderError | None:
        """The :class:`ProviderError` for an SDK failure, or None for anything else."""
        status_errors, connection_errors = self.sdk_errors()
        if isinstance(exc, connection_errors):
            return failures.connection_error(exc, self.name)
        if isinstance(exc, status_errors):
            return failures.from_status_error(exc, self.name)
        if isinstance(exc, ValueError):  # an event that is not JSON: the SDK's decoder
            return failures.malformed(self.name, f"{type(exc).__name__}: {exc}")
        return None
