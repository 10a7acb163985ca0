"""Limits and restart policy, with the defaults and the reasons for them."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from sessiontree._budget import Budget, Usage
from sessiontree._model import PublicModel

RestartType = Literal["permanent", "transient", "temporary"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
AutoShutdown = Literal["never", "any_significant", "all_significant"]
Shutdown = float | Literal["brutal_kill"]

DEFAULT_SHUTDOWN = 5.0
"""Seconds a stopped attempt gets to end after its cooperative cancel (OTP's worker
default, 5,000 ms). A provider call or a tool that watches its cancel token ends within
a second or two; an attempt still running after five is almost surely blocked in a call
that never looks, and it is already fenced (it can write nothing), so waiting longer
would only hold up whatever waits for it (a group restart, the session's next job)."""


def shutdown_seconds(value: object) -> float:
    """A shutdown given as seconds (``>= 0``, at most an hour) or ``"brutal_kill"``
    (``0``: fenced at once, never waited for), as seconds. Raises ``ValueError``."""
    if value == "brutal_kill":
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"shutdown must be seconds or 'brutal_kill', not {value!r}")
    if not 0 <= float(value) <= 3600:
        raise ValueError(f"shutdown must be between 0 and 3600 seconds, not {value!r}")
    return float(value)


class RateLimit(PublicModel):
    """Optional per-provider rate limits (None: no limit in that dimension)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class BackpressurePolicy(PublicModel):
    """How a retryable provider failure slows the provider down.

    Defaults and why: ``decrease_factor=0.5`` (TCP's halving: quick to back off);
    ``default_cooldown=1.0`` s doubled per failure in a row when the provider gives no
    ``Retry-After`` (1, 2, 4 ... s: most 5xx blips clear within seconds);
    ``max_cooldown=300`` s (a provider asking for longer is effectively down; we look
    again after five minutes); ``max_retries=10`` retryable failures of one run
    before its session fails (about ten minutes of a provider that keeps failing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    decrease_factor: float = Field(default=0.5, gt=0, lt=1)
    default_cooldown: float = Field(default=1.0, ge=0)
    max_cooldown: float = Field(default=300.0, ge=0)
    max_retries: int = Field(default=10, ge=0)


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


class SupervisorPolicy(PublicModel):
    """A parent's supervisor intensity: restarts of *all* its children within ``period``
    seconds (a group restart under ``one_for_all``/``rest_for_one`` counts once). One
    more and the parent gives up: it fails with ``restart_intensity``, its children are
    torn down, and its own parent is told.

    Default **5 restarts in 60 s** (OTP: 1 in 5 s). Each child already has its own
    intensity (3 in 60 s), so one flaky child cannot exhaust its parent alone; five
    restarts a minute across a parent's children (at most eight by default) means the
    tree fails systematically (a bad provider, a broken tool) and every further restart
    only spends money.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_restarts: int = Field(default=5, ge=0, le=1000)
    period: float = Field(default=60.0, gt=0)


class Limits(PublicModel):
    """Scheduler limits. Every field is validated; a bad value raises at construction.

    Defaults and why:
    - ``max_concurrent_runs=8``: model calls are I/O-bound; 8 in flight keeps a provider
      busy without tripping typical per-key rate limits.
    - ``provider_limits``: per-provider caps (default: the global cap). A provider's
      *effective* cap shrinks after 429/overloaded and recovers (``backpressure``).
    - ``rate_limits``: optional per-provider requests- and tokens-per-minute limits
      (default none: set them to your account's tier).
    - ``backpressure``: how a retryable provider failure cools a provider down and
      shrinks its concurrency (see ``supervision.backpressure``).
    - ``max_depth=3``: root, children, grandchildren, great-grandchildren: deeper trees
      are almost always runaway recursion.
    - ``max_children=8`` per session: a fan-out wider than that is usually a loop.
    - ``reserve_tokens=4096``, ``reserve_cost=0.0``: what one model_run reserves from
      its session's budget before dispatch (see ``supervision.scheduler``).
    - ``default_budget``: a root created without a budget gets at most 1,000 model
      runs: a safety net, not a plan.
    - ``supervisor``: a parent's supervisor intensity (see :class:`SupervisorPolicy`),
      unless the session is created or spawned with its own.
    - ``default_shutdown=5.0`` seconds: see :data:`DEFAULT_SHUTDOWN`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_concurrent_runs: int = Field(default=8, ge=1, le=10_000)
    provider_limits: dict[str, int] = Field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    backpressure: BackpressurePolicy = BackpressurePolicy()
    max_depth: int = Field(default=3, ge=0, le=100)
    max_children: int = Field(default=8, ge=0, le=100_000)
    reserve_tokens: int = Field(default=4096, ge=0)
    reserve_cost: float = Field(default=0.0, ge=0)
    default_budget: Budget = Budget(model_runs=1000)
    restart: RestartPolicy = RestartPolicy()
    default_restart: RestartType = "transient"
    default_strategy: Strategy = "one_for_one"
    supervisor: SupervisorPolicy = SupervisorPolicy()
    default_shutdown: float = Field(default=DEFAULT_SHUTDOWN, ge=0, le=3600)

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


def supervision_fields(
    limits: Limits, *, restart: str | None = None, child_strategy: str | None = None,
    shutdown: Shutdown | None = None, auto_shutdown: str | None = None,
    supervisor: SupervisorPolicy | None = None, significant: bool = False,
    keep_open: bool = False,
) -> dict[str, object]:
    """A new session's supervision settings, each given or the runtime's default, as
    the store's fields. Raises ``ValueError`` for a bad value or combination."""
    if restart not in (None, "permanent", "transient", "temporary"):
        raise ValueError(f"unknown restart type {restart!r}")
    if child_strategy not in (None, "one_for_one", "one_for_all", "rest_for_one"):
        raise ValueError(f"unknown strategy {child_strategy!r}")
    if auto_shutdown not in (None, "never", "any_significant", "all_significant"):
        raise ValueError(f"unknown auto_shutdown {auto_shutdown!r}")
    if supervisor is not None and not isinstance(supervisor, SupervisorPolicy):
        raise ValueError("supervisor must be a SupervisorPolicy")
    for name, flag in (("significant", significant), ("keep_open", keep_open)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be a bool")
    restart = restart or limits.default_restart
    if significant and restart == "permanent":
        raise ValueError("a permanent session cannot be significant: it never ends on its own")
    policy = supervisor or limits.supervisor
    return {
        "restart": restart,
        "child_strategy": child_strategy or limits.default_strategy,
        "shutdown": limits.default_shutdown if shutdown is None else shutdown_seconds(shutdown),
        "auto_shutdown": auto_shutdown or "never",
        "child_max_restarts": policy.max_restarts,
        "child_period": policy.period,
        "significant": significant,
        "keep_open": keep_open,
    }
