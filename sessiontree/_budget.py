"""Budgets and usage: what a session may spend and what it has spent.

A budget bounds three dimensions; ``None`` means unbounded in that dimension. A child's
budget is carved out of its parent's available budget (see
:meth:`Budget.carve`), so a tree can never be *given* more than its root was.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from sessiontree._model import PublicModel


class Usage(PublicModel):
    """Spend of one run, one session, or a whole subtree. Strict: counts are ``int``
    (never ``bool``, ``float`` or ``str``), ``cost`` and ``wall_time`` numbers.

    ``unpriced_runs`` counts the model runs whose cost is unknown (no price for the
    model): ``cost`` excludes them, so it is a lower bound whenever this is > 0.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost: float = Field(default=0.0, ge=0.0)
    model_runs: int = Field(default=0, ge=0)
    wall_time: float = Field(default=0.0, ge=0.0)
    unpriced_runs: int = Field(default=0, ge=0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost=self.cost + other.cost,
            model_runs=self.model_runs + other.model_runs,
            wall_time=self.wall_time + other.wall_time,
            unpriced_runs=self.unpriced_runs + other.unpriced_runs,
        )


class Budget(PublicModel):
    """Upper bounds on spend. ``None`` in a dimension means no bound there. Strict:
    ``Budget(model_runs=True)`` or ``Budget(tokens="12")`` raise :class:`InvalidInput`
    instead of being coerced."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    tokens: int | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0.0)
    model_runs: int | None = Field(default=None, ge=0)

    @classmethod
    def unlimited(cls) -> Budget:
        return cls()

    def as_usage(self) -> Usage:
        """The bounded dimensions as a usage (unbounded ones count 0): what a carve holds."""
        return Usage(
            output_tokens=self.tokens or 0, cost=self.cost or 0.0, model_runs=self.model_runs or 0
        )

    def remaining(self, spent: Usage) -> Budget:
        """What is left after ``spent``; may be negative after an overshoot."""
        return Budget.model_construct(
            tokens=None if self.tokens is None else self.tokens - spent.tokens,
            cost=None if self.cost is None else self.cost - spent.cost,
            model_runs=None if self.model_runs is None else self.model_runs - spent.model_runs,
        )

    def admits(self, reservation: Usage) -> bool:
        """True if ``reservation`` fits in this (remaining) budget.

        A bounded dimension must have something left (> 0) and at least the reserved
        amount; an unbounded one always admits.
        """
        if self.model_runs is not None and self.model_runs < max(1, reservation.model_runs):
            return False
        if self.tokens is not None and (self.tokens <= 0 or self.tokens < reservation.tokens):
            return False
        return not (self.cost is not None and (self.cost <= 0 or self.cost < reservation.cost))

    def exhausted_dimension(self, reservation: Usage) -> str | None:
        """Name of the first dimension that does not admit ``reservation``, if any."""
        if self.model_runs is not None and self.model_runs < max(1, reservation.model_runs):
            return "model_runs"
        if self.tokens is not None and (self.tokens <= 0 or self.tokens < reservation.tokens):
            return "tokens"
        if self.cost is not None and (self.cost <= 0 or self.cost < reservation.cost):
            return "cost"
        return None

    def share(self, parts: int) -> Budget:
        """This budget split in ``parts`` equal shares (bounded dimensions only)."""
        n = max(1, parts)
        return Budget(
            tokens=None if self.tokens is None else max(0, self.tokens) // n,
            cost=None if self.cost is None else max(0.0, self.cost) / n,
            model_runs=None if self.model_runs is None else max(0, self.model_runs) // n,
        )

    def carve(self, requested: Budget | None) -> Budget | None:
        """The slice a child gets from this (available) budget, or None if it cannot fit.

        Each bounded dimension of the child is ``min(requested, available)``; a dimension
        the parent bounds cannot be unbounded in the child (it gets all that is left). A
        request for more than is available in a dimension is refused (None), so carving
        never silently shrinks what the caller asked for.
        """
        req = requested or Budget()

        def one(avail: float | None, want: float | None) -> tuple[bool, float | None]:
            if avail is None:
                return True, want
            if avail <= 0:
                return False, None
            if want is None:
                return True, avail
            return want <= avail, want

        ok_t, t = one(self.tokens, req.tokens)
        ok_c, c = one(self.cost, req.cost)
        ok_r, r = one(self.model_runs, req.model_runs)
        if not (ok_t and ok_c and ok_r):
            return None
        return Budget(
            tokens=None if t is None else int(t),
            cost=c,
            model_runs=None if r is None else int(r),
        )
