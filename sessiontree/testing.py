"""What our tests and our users' tests need: a manual clock, fault injection, helpers.

``FaultPlan`` makes a named step raise: ``provider.before``, ``provider.after``,
``tool.before``, ``tool.after``, ``actor.run`` (the actor itself), and
``store.commit`` (through :meth:`FaultPlan.attach_store`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessiontree._clock import ManualClock
from sessiontree._runtime import Runtime
from sessiontree.persistence.faults import disk_full_error
from sessiontree.persistence.store import Store
from sessiontree.providers.scripted import ScriptedProvider, ScriptTurn, call, reply


class Commits:
    """Wait until a fact holds, re-checked after every store commit (never by sleeping).

    ``Commits(rt).until(lambda: rt.session(sid).state == "waiting")`` returns the fact's
    first truthy value or raises AssertionError after ``timeout`` seconds.
    """

    def __init__(self, rt: Runtime) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        rt.on_change(self._heard)

    def _heard(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def until(self, fact: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._generation
            value = fact()  # read outside the condition: committers must not wait on us
            if value:
                return value
            with self._cond:
                while self._generation == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise AssertionError(f"not reached within {timeout}s")
                    self._cond.wait(min(remaining, 0.25))


def scheduler_idle(rt: Runtime, timeout: float = 10.0) -> None:
    """Wait until the runtime's scheduler counts no run in flight, re-checked each time
    it has handled a message (its runs are counted out by messages, after their
    commits). Raises AssertionError after ``timeout`` seconds."""
    idle = rt._ctx.scheduler_idle  # notified after every message it handles
    deadline = time.monotonic() + timeout
    while rt.stats().running:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"runs still in flight after {timeout}s")
        with idle:
            idle.wait(min(remaining, 0.05))  # a message handled meanwhile: checked again


class InjectedFault(RuntimeError):
    """Raised at a fault point by a :class:`FaultPlan`."""

    def __init__(self, step: str, facts: dict[str, Any], retryable: bool = True) -> None:
        super().__init__(f"injected fault at {step} {facts}")
        self.step = step
        self.facts = facts
        self.retryable = retryable


@dataclass
class _Rule:
    step: str
    times: int
    match: dict[str, Any]
    error: Callable[[str, dict[str, Any]], BaseException] | None
    fired: int = 0


@dataclass
class FaultPlan:
    """Raise at chosen steps, a chosen number of times, where the facts match."""

    rules: list[_Rule] = field(default_factory=list)
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def at(
        self,
        step: str,
        *,
        times: int = 1,
        error: Callable[[str, dict[str, Any]], BaseException] | None = None,
        **match: Any,
    ) -> FaultPlan:
        self.rules.append(_Rule(step, times, match, error))
        return self

    def fired(self, step: str | None = None) -> int:
        return sum(r.fired for r in self.rules if step is None or r.step == step)

    def __call__(self, step: str, facts: dict[str, Any]) -> None:
        with self._lock:
            for rule in self.rules:
                if rule.step != step or rule.fired >= rule.times:
                    continue
                if any(facts.get(k) != v for k, v in rule.match.items()):
                    continue
                rule.fired += 1
                self.log.append((step, dict(facts)))
                raise rule.error(step, facts) if rule.error else InjectedFault(step, facts)

    def attach_store(self, store: Store) -> None:
        """Route ``store.commit`` faults (raised as SQLite errors) through this plan."""

        def hook(step: str) -> None:
            self(step, {})

        store.fault_hook = hook


def disk_full(step: str, facts: dict[str, Any]) -> BaseException:
    """A :class:`FaultPlan` error factory: the store's real full-disk error."""
    return disk_full_error()


__all__ = [
    "Commits",
    "FaultPlan",
    "InjectedFault",
    "ManualClock",
    "ScriptTurn",
    "ScriptedProvider",
    "call",
    "disk_full",
    "reply",
    "scheduler_idle",
]
