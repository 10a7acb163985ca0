"""What a runtime's actors share: the store, the registries, the limits, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessiontree.actors.history import HistoryCache
from sessiontree.actors.threads import ActorThreads
from sessiontree.clock import Clock
from sessiontree.persistence.store import Store
from sessiontree.providers.base import Provider
from sessiontree.supervision.limits import Limits
from sessiontree.tools.gate import ToolGate
from sessiontree.tools.registry import ToolRegistry

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
    history: HistoryCache = field(init=False)
    actor_threads: ActorThreads = field(init=False)

    def __post_init__(self) -> None:
        self.history = HistoryCache(self.store)
        self.store.add_listener(self.history.on_commit)
        self.actor_threads = ActorThreads()

    def fault(self, step: str, **facts: Any) -> None:
        """Named fault point: a test's hook may raise here."""
        if self.fault_hook is not None:
            self.fault_hook(step, facts)
