"""What our tests and our users' tests need: a manual clock, fault injection, helpers.

``FaultPlan`` makes a named step raise: ``provider.before``, ``provider.after``,
``tool.before``, ``tool.after``, ``actor.run`` (the actor itself), and
``store.commit`` (through :meth:`FaultPlan.attach_store`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessiontree.clock import ManualClock
from sessiontree.persistence.store import Store
from sessiontree.providers.scripted import ScriptedProvider, ScriptTurn, call, reply


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
    return sqlite3.OperationalError("database or disk is full")


__all__ = [
    "FaultPlan",
    "InjectedFault",
    "ManualClock",
    "ScriptTurn",
    "ScriptedProvider",
    "call",
    "disk_full",
    "reply",
]
