"""Checks of what a host passes to :class:`~sessiontree._runtime.Runtime`: each raises
:class:`InvalidInput` with the reason, never lets a bad value reach the store (where it
would surface as an untyped error, or be silently coerced)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sessiontree._budget import Budget
from sessiontree._errors import InvalidInput
from sessiontree._jsonsafe import json_problem
from sessiontree._limits import Limits

EVENT_FILTERS = frozenset({"session_id", "root_id", "type_prefix", "after", "limit"})


def check_timeout(name: str, value: Any, *, allow_zero: bool = True) -> None:
    """``value`` is a finite real number of seconds (>= 0, or > 0 without ``allow_zero``),
    or None where zero is allowed (no limit)."""
    if value is None and allow_zero:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(f"{name} must be {'>=' if allow_zero else '>'} 0, not {value!r}")


def check_row_text(name: str, value: str) -> str:
    """Text stored in a column must be encodable as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} holds a lone surrogate, which cannot be stored: {value!r}",
                           field=name) from None
    return value


def check_id(name: str, value: Any) -> str:
    """An id given by the host: a ``str`` that could be stored (else no row has it)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a str, not {type(value).__name__}")
    return check_row_text(name, value)


def check_capabilities(capabilities: Iterable[str]) -> tuple[str, ...]:
    if isinstance(capabilities, str | bytes):
        raise InvalidInput(
            f"capabilities must be an iterable of capability names, not one {type(capabilities).__name__}"
            f" (write [{capabilities!r}])")
    try:
        caps = tuple(capabilities)
    except TypeError:
        raise InvalidInput(
            f"capabilities must be an iterable of capability names, not {type(capabilities).__name__}"
        ) from None
    for cap in caps:
        if not isinstance(cap, str) or not cap:
            raise InvalidInput(f"capabilities must be non-empty strings, not {cap!r}")
        check_row_text("capability", cap)
    return caps


def check_meta(meta: Any) -> dict[str, Any] | None:
    """``meta`` is None or a JSON object (string keys, JSON values, no NaN, at most
    ``jsonsafe.MAX_DEPTH`` levels)."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InvalidInput(f"meta must be a dict, not {type(meta).__name__}")
    problem = json_problem(meta)
    if problem is not None:
        raise InvalidInput(f"meta must be JSON: it {problem}")
    return meta


def check_fundable(budget: Budget, limits: Limits) -> None:
    """A session must be able to afford the reservation of its first model run
    (``Limits.reservation``); otherwise it could only ever fail ``budget_exceeded``."""
    reservation = limits.reservation()
    dimension = budget.exhausted_dimension(reservation)
    if dimension == "tokens":
        raise InvalidInput(
            f"a budget of {budget.tokens} tokens cannot fund one model run: each run reserves "
            f"Limits.reserve_tokens={reservation.tokens} tokens (and needs more than 0); give "
            "at least that many, or lower reserve_tokens",
            tokens=budget.tokens, reserve_tokens=reservation.tokens)
    if dimension == "cost":
        raise InvalidInput(
            f"a budget of cost {budget.cost} cannot fund one model run: each run reserves "
            f"Limits.reserve_cost={reservation.cost} (and needs more than 0)",
            cost=budget.cost, reserve_cost=reservation.cost)
    if dimension == "model_runs":
        raise InvalidInput(f"a budget of {budget.model_runs} model runs cannot fund one run",
                           model_runs=budget.model_runs)


def check_event_filters(filters: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(filters) - EVENT_FILTERS)
    if unknown:
        raise InvalidInput(
            f"unknown event filter(s) {', '.join(unknown)}; use {', '.join(sorted(EVENT_FILTERS))}")
    for key in ("session_id", "root_id", "type_prefix"):
        if filters.get(key) is not None:
            check_id(key, filters[key])
    for key in ("after", "limit"):
        value = filters.get(key)
        if value is not None and (type(value) is not int or value < 0):
            raise InvalidInput(f"{key} must be an int >= 0")
    return filters
