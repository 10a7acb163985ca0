"""Prices: usage (tokens) into cost (US dollars), per model, user-overridable.

A :class:`Price` is dollars per **million** input tokens and per million output tokens.
:data:`DEFAULT_PRICES` holds the providers' published list prices for their common
models **as of** :data:`PRICES_AS_OF` (standard tier, no batch or cache discounts).
Prices change: pass your own to an adapter (``prices={"my-model": Price(...)}``, merged
over the defaults) or a whole :class:`PriceTable`.

A model is looked up by exact name, then with a snapshot suffix removed (``-20250514``,
``-2024-08-06`` or ``-latest``: ``gpt-4o-2024-08-06`` is priced as ``gpt-4o``), never
by a looser prefix (``claude-opus-4-5`` is not ``claude-opus-4``: a newer model with a
different price is unknown until you add it). A model
with no price has an **unknown** cost: its runs are counted in
``Usage.unpriced_runs`` instead of being priced at zero, and a session with a cost
budget on such a model is refused at creation (``cost_unknown``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field

from sessiontree._budget import Usage
from sessiontree._errors import InvalidInput
from sessiontree._model import PublicModel

PRICES_AS_OF = "2025-08-15"
"""The date the default prices were read from the providers' pricing pages."""


class Price(PublicModel):
    """Dollars per million input tokens and per million output tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


_SNAPSHOT = re.compile(r"^(.+?)-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")

FREE = Price(input_per_mtok=0.0, output_per_mtok=0.0)

DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI (platform.openai.com/docs/pricing), standard tier
    "gpt-5": Price(input_per_mtok=1.25, output_per_mtok=10.0),
    "gpt-5-mini": Price(input_per_mtok=0.25, output_per_mtok=2.0),
    "gpt-5-nano": Price(input_per_mtok=0.05, output_per_mtok=0.40),
    "gpt-4.1": Price(input_per_mtok=2.0, output_per_mtok=8.0),
    "gpt-4.1-mini": Price(input_per_mtok=0.40, output_per_mtok=1.60),
    "gpt-4.1-nano": Price(input_per_mtok=0.10, output_per_mtok=0.40),
    "gpt-4o": Price(input_per_mtok=2.50, output_per_mtok=10.0),
    "gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.60),
    "o3": Price(input_per_mtok=2.0, output_per_mtok=8.0),
    "o4-mini": Price(input_per_mtok=1.10, output_per_mtok=4.40),
    # Anthropic (anthropic.com/pricing)
    "claude-opus-4-1": Price(input_per_mtok=15.0, output_per_mtok=75.0),
    "claude-opus-4": Price(input_per_mtok=15.0, output_per_mtok=75.0),
    "claude-sonnet-4": Price(input_per_mtok=3.0, output_per_mtok=15.0),
    "claude-3-7-sonnet": Price(input_per_mtok=3.0, output_per_mtok=15.0),
    "claude-3-5-sonnet": Price(input_per_mtok=3.0, output_per_mtok=15.0),
    "claude-3-5-haiku": Price(input_per_mtok=0.80, output_per_mtok=4.0),
    "claude-3-haiku": Price(input_per_mtok=0.25, output_per_mtok=1.25),
}


class PriceTable:
    """Model name -> :class:`Price`, with prefix lookup for dated snapshots."""

    def __init__(self, prices: Mapping[str, Price | Mapping[str, Any]] | None = None,
                 *, as_of: str = PRICES_AS_OF) -> None:
        self.as_of = as_of
        self._prices: dict[str, Price] = {}
        for model, price in (prices or {}).items():
            if not isinstance(model, str) or not model:
                raise InvalidInput("price table keys must be non-empty model names")
            self._prices[model] = price if isinstance(price, Price) else Price(**dict(price))

    @classmethod
    def default(cls) -> PriceTable:
        return cls(DEFAULT_PRICES)

    def merged(self, overrides: Mapping[str, Price | Mapping[str, Any]] | None) -> PriceTable:
        """A new table: this one with ``overrides`` replacing or adding models."""
        out = PriceTable(self._prices, as_of=self.as_of)
        out._prices.update(PriceTable(overrides)._prices)
        return out

    def price(self, model: str) -> Price | None:
        """The price of ``model``, or None when it is unknown."""
        if model in self._prices:
            return self._prices[model]
        snapshot = _SNAPSHOT.match(model)
        return self._prices.get(snapshot.group(1)) if snapshot else None

    def usage(self, model: str, input_tokens: int, output_tokens: int) -> Usage:
        """One model run's usage, priced (or counted in ``unpriced_runs``)."""
        return priced_usage(self.price(model), input_tokens, output_tokens)


def priced_usage(price: Price | None, input_tokens: int, output_tokens: int) -> Usage:
    """One model run's usage; ``price`` None counts it in ``unpriced_runs``."""
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=price.cost(input_tokens, output_tokens) if price is not None else 0.0,
        model_runs=1,
        unpriced_runs=0 if price is not None else 1,
    )


def knows_cost(provider: object, model: str) -> bool:
    """Whether ``provider`` can price ``model``: True for providers without a
    ``price(model)`` method (they compute cost themselves, like ScriptedProvider)."""
    pricer = getattr(provider, "price", None)
    if not callable(pricer):
        return True
    return pricer(model) is not None
