"""The SchedulerActor (root of the supervision tree), limits, budgets, restart policy."""

from sessiontree.supervision.limits import Limits, RestartPolicy

__all__ = ["Limits", "RestartPolicy"]
