"""Provider back-pressure: the decisions, as pure functions of their inputs.

A provider that answers 429 or "overloaded" must slow the whole tree down, not make
each session retry on its own. Per provider the scheduler keeps a
:class:`ProviderPressure` and asks, before each dispatch, :func:`decide_admission`:

1. **cool-down** -- after a retryable failure no run is dispatched to the provider
   until ``cooldown_until`` (reason ``provider_cooldown``);
2. **effective concurrency** -- runs in flight must stay below ``floor(window)``,
   which starts at the provider's concurrency limit (``Limits.provider_limit``) and
   moves by AIMD: each retryable failure multiplies it by
   ``BackpressurePolicy.decrease_factor`` (never below 1), each successful call adds
   ``1 / window`` (so a window's worth of successes adds one slot, up to the limit)
   (reason ``provider_limit``);
3. **requests per minute** -- at most ``RateLimit.requests_per_minute`` dispatches in
   any 60 s (reason ``requests_per_minute``);
4. **tokens per minute** -- the tokens of calls that finished in the last 60 s, plus
   ``Limits.reserve_tokens`` for each call in flight and for the one asked about, must
   fit in ``RateLimit.tokens_per_minute`` (reason ``tokens_per_minute``); a provider
   with nothing counted admits one call whatever its estimate, so a small limit slows
   work down but never wedges it.

:func:`decide_cooldown` says how long a retryable failure cools the provider down: the
provider's ``Retry-After`` when it sent one, else ``default_cooldown`` doubled for each
failure in a row; at most ``max_cooldown``. :func:`decide_retry` says whether the failed
run is re-queued (it is not a crash: no restart is counted) or, after ``max_retries``
retryable failures of the same run, the session fails.

The state is the scheduler thread's alone and lives in memory: a new process starts
every provider uncooled at its full limit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sessiontree._limits import BackpressurePolicy, RateLimit
from sessiontree._reasons import Reason

WINDOW = 60.0
"""Seconds of the requests- and tokens-per-minute windows."""


@dataclass
class ProviderPressure:
    """What the scheduler knows of one provider's recent behaviour."""

    ceiling: int
    window: float = 0.0
    cooldown_until: float = 0.0
    failures_in_row: int = 0
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    in_flight: dict[str, int] = field(default_factory=dict)  # job id -> reserved tokens

    def __post_init__(self) -> None:
        if self.window <= 0:
            self.window = float(self.ceiling)

    @property
    def concurrency(self) -> int:
        return max(1, math.floor(self.window))


@dataclass(frozen=True)
class Admission:
    """``reason`` None: dispatch. Otherwise why not, and when to look again (None:
    when a run of this provider finishes)."""

    reason: Reason | None = None
    retry_at: float | None = None


ADMIT = Admission()


@dataclass(frozen=True)
class Cooldown:
    delay: float
    until: float
    window: float


def decide_admission(
    p: ProviderPressure, now: float, running: int, rate: RateLimit | None, reserve_tokens: int,
) -> Admission:
    """May one more run be dispatched to this provider now?"""
    if now < p.cooldown_until:
        return Admission(Reason.PROVIDER_COOLDOWN, p.cooldown_until)
    if running >= p.concurrency:
        return Admission(Reason.PROVIDER_LIMIT)
    if rate is None:
        return ADMIT
    since = now - WINDOW
    if rate.requests_per_minute is not None:
        recent = [t for t in p.requests if t > since]
        if len(recent) >= rate.requests_per_minute:
            return Admission(Reason.REQUESTS_PER_MINUTE, recent[0] + WINDOW)
    if rate.tokens_per_minute is not None:
        finished = [(t, n) for t, n in p.tokens if t > since]
        used = sum(n for _, n in finished) + sum(p.in_flight.values())
        if used > 0 and used + reserve_tokens > rate.tokens_per_minute:
            return Admission(Reason.TOKENS_PER_MINUTE,
                             finished[0][0] + WINDOW if finished else None)
    return ADMIT


def decide_cooldown(
    p: ProviderPressure, now: float, retry_after: float | None, policy: BackpressurePolicy,
) -> Cooldown:
    """The cool-down and the shrunk window after a retryable failure."""
    if retry_after is not None and retry_after >= 0:
        delay = retry_after
    else:
        delay = policy.default_cooldown * 2.0 ** p.failures_in_row
    delay = min(delay, policy.max_cooldown)
    return Cooldown(delay, max(p.cooldown_until, now + delay),
                    max(1.0, p.window * policy.decrease_factor))


def decide_retry(failures_of_run: int, policy: BackpressurePolicy) -> bool:
    """Re-queue a run after its ``failures_of_run``-th retryable failure?"""
    return failures_of_run <= policy.max_retries


def grown_window(p: ProviderPressure) -> float:
    """The window after one successful call (additive increase, up to the ceiling)."""
    return min(float(p.ceiling), p.window + 1.0 / p.window)


class Backpressure:
    """Every provider's :class:`ProviderPressure`, and the writes that follow the
    decisions above. Used by the scheduler thread only."""

    def __init__(self, ceiling: Callable[[str], int]) -> None:
        self._ceiling = ceiling
        self.providers: dict[str, ProviderPressure] = {}
        self.run_failures: dict[str, int] = {}  # job id -> retryable failures so far

    def of(self, provider: str) -> ProviderPressure:
        p = self.providers.get(provider)
        if p is None:
            p = self.providers[provider] = ProviderPressure(self._ceiling(provider))
        return p

    def dispatched(self, provider: str, now: float, job_id: str, reserve_tokens: int) -> None:
        p = self.of(provider)
        p.requests.append(now)
        p.in_flight[job_id] = reserve_tokens
        self._prune(p, now)

    def released(self, provider: str, job_id: str) -> None:
        self.of(provider).in_flight.pop(job_id, None)

    def succeeded(self, provider: str, now: float, job_id: str, tokens: int) -> None:
        p = self.of(provider)
        p.in_flight.pop(job_id, None)
        p.tokens.append((now, tokens))
        p.failures_in_row = 0
        if now >= p.cooldown_until:
            p.window = grown_window(p)
        self.run_failures.pop(job_id, None)
        self._prune(p, now)

    def failed(self, provider: str, job_id: str, cooldown: Cooldown, *, now: float) -> int:
        """Apply a retryable failure's cool-down (from :func:`decide_cooldown`); return
        the run's count of retryable failures so far."""
        p = self.of(provider)
        p.cooldown_until, p.window = cooldown.until, cooldown.window
        p.failures_in_row += 1
        p.in_flight.pop(job_id, None)
        count = self.run_failures.get(job_id, 0) + 1
        self.run_failures[job_id] = count
        self._prune(p, now)
        return count

    def drain(self, notes: deque[Any], now: float) -> None:
        """Count each call that returned (``ProviderUsed`` notes, oldest first)."""
        while notes:
            note = notes.popleft()
            self.succeeded(note.provider, now, note.job_id, note.tokens)

    def wants_notes(self, now: float, rates: Mapping[str, RateLimit]) -> bool:
        """Could a provider call's success admit a run now? Only while some provider
        is cooling down or below its full window, or a rate limit applies; at rest the
        scheduler needs no word of a success before the run ends."""
        if rates:
            return True
        return any(p.window < p.ceiling or now < p.cooldown_until
                   for p in self.providers.values())

    def forget_run(self, job_id: str) -> None:
        self.run_failures.pop(job_id, None)

    @staticmethod
    def _prune(p: ProviderPressure, now: float) -> None:
        since = now - WINDOW
        while p.requests and p.requests[0] <= since:
            p.requests.popleft()
        while p.tokens and p.tokens[0][0] <= since:
            p.tokens.popleft()
