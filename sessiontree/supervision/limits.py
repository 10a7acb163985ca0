"""Limits and restart policy, with the defaults and the reasons for them."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from sessiontree._model import PublicModel
from sessiontree.budget import Budget, Usage

RestartType = Literal["permanent", "transient", "temporary"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]


class RestartPolicy(PublicModel):
    """How many crashes a session survives, and how long to wait between restarts.

    OTP's defaults are 1 restart in 5 s. A crashed LLM session costs money on every
    retry but usually crashed on something transient (a provider hiccup, a flaky tool)
    that clears within seconds, so we allow **3 restarts in 60 s**, with exponential
    back-off **0.5 s, 1 s, 2 s ...** capped at **30 s**: enough to ride out a blip,
    few enough that a deterministic bug fails the session (``restart_intensity``)
    after at most three wasted runs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_restarts: int = Field(default=3, ge=0, le=1000)
    period: float = Field(default=60.0, gt=0)
    backoff_initial: float = Field(default=0.5, ge=0)
    backoff_factor: float = Field(default=2.0, ge=1.0)
    backoff_max: float = Field(default=30.0, ge=0)

    def delay(self, restart_number: int) -> float:
        """Back-off before the ``restart_number``-th restart in the period (1-based)."""
        raw = self.backoff_initial * self.backoff_factor ** max(0, restart_number - 1)
        return float(min(self.backoff_max, raw))


class Limits(PublicModel):
    """Scheduler limits. Every field is validated; a bad value raises at construction.

    Defaults and why:
    - ``max_concurrent_runs=8``: model calls are I/O-bound; 8 in flight keeps a provider
      busy without tripping typical per-key rate limits.
    - ``provider_limits``: per-provider caps (default: the global cap).
    - ``max_depth=3``: root, children, grandchildren, great-grandchildren: deeper trees
      are almost always runaway recursion.
    - ``max_children=8`` per session: a fan-out wider than that is usually a loop.
    - ``reserve_tokens=4096``, ``reserve_cost=0.0``: what one model_run reserves from
      its session's budget before dispatch (see ``supervision.scheduler``).
    - ``default_budget``: a root created without a budget gets at most 1,000 model
      runs: a safety net, not a plan.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_concurrent_runs: int = Field(default=8, ge=1, le=10_000)
    provider_limits: dict[str, int] = Field(default_factory=dict)
    max_depth: int = Field(default=3, ge=0, le=100)
    max_children: int = Field(default=8, ge=0, le=100_000)
    reserve_tokens: int = Field(default=4096, ge=0)
    reserve_cost: float = Field(default=0.0, ge=0)
    default_budget: Budget = Budget(model_runs=1000)
    restart: RestartPolicy = RestartPolicy()
    default_restart: RestartType = "transient"
    default_strategy: Strategy = "one_for_one"

    @model_validator(mode="after")
    def _check_provider_limits(self) -> Limits:
        for name, value in self.provider_limits.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"provider limit for {name!r} must be an int >= 1")
        return self

    def provider_limit(self, provider: str) -> int:
        return self.provider_limits.get(provider, self.max_concurrent_runs)

    def reservation(self) -> Usage:
        return Usage(output_tokens=self.reserve_tokens, cost=self.reserve_cost, model_runs=1)
