"""What a runtime's actors share: the store, the registries, the limits, the clock."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from sessiontree._clock import Clock
from sessiontree._limits import Limits
from sessiontree.actors.history import HistoryCache
from sessiontree.actors.messages import ProviderUsed
from sessiontree.actors.threads import ActorThreads
from sessiontree.persistence.store import Store
from sessiontree.providers.base import Provider
from sessiontree.tools.gate import ToolGate
from sessiontree.tools.registry import ToolRegistry
from sessiontree.workspace.service import Workspaces

FaultHook = Callable[[str, dict[str, Any]], None]


@dataclass
class RuntimeContext:
    store: Store
    limits: Limits
    clock: Clock
    tools: ToolRegistry
    gate: ToolGate
    providers: dict[str, Provider] = field(default_factory=dict)
    fault_hook: FaultHook | None = None
    scheduler: Any = None  # pykka ActorRef of the SchedulerActor, set at start
    spawn_port: Any = None  # what built-in tools call to spawn (asks the scheduler)
    on_scheduler_stopped: Callable[[], None] | None = None  # the runtime wakes its waiters
    scheduler_idle: Any = None  # the scheduler's Condition, notified after each message
    history: HistoryCache = field(init=False)
    actor_threads: ActorThreads = field(init=False)
    workspaces: Workspaces = field(init=False)

    def __post_init__(self) -> None:
        self.workspaces = Workspaces(self.store)
        self.history = HistoryCache(self.store)
        self.store.add_listener(self.history.on_commit)
        self.actor_threads = ActorThreads()

    def provider_used(self, provider: str, job_id: str, tokens: int) -> None:
        """Tell the scheduler a provider call returned (its back-pressure counts it)."""
        if self.scheduler is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.scheduler.tell(ProviderUsed(provider=provider, job_id=job_id, tokens=tokens))

    def fault(self, step: str, **facts: Any) -> None:
        """Named fault point: a test's hook may raise here."""
        if self.fault_hook is not None:
            self.fault_hook(step, facts)
