"""Public, read-only views of sessions and trees (pydantic, JSON-ready)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from sessiontree.budget import Budget, Usage
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.store import Store


class SessionInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    parent_id: str | None
    root_id: str
    depth: int
    role: str
    state: str
    reason: str | None
    provider: str
    model: str
    budget: Budget
    usage: Usage
    spent: Usage
    spawn_count: int
    capabilities: tuple[str, ...]
    workspace: str | None
    created_at: float
    ended_at: float | None
    summary: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in ("completed", "failed", "cancelled")


class SessionNode(BaseModel):
    model_config = ConfigDict(frozen=True)

    session: SessionInfo
    children: list[SessionNode] = []

    def as_json(self) -> dict[str, Any]:
        s = self.session
        return {
            "id": s.id,
            "parent_id": s.parent_id,
            "role": s.role,
            "state": s.state,
            "reason": s.reason,
            "depth": s.depth,
            "usage": s.usage.model_dump(mode="json"),
            "spent": s.spent.model_dump(mode="json"),
            "budget": s.budget.model_dump(mode="json"),
            "children": [c.as_json() for c in self.children],
        }

    def walk(self) -> list[SessionInfo]:
        out = [self.session]
        for child in self.children:
            out.extend(child.walk())
        return out


def info(store: Store, record: SessionRecord, *, with_summary: bool = True) -> SessionInfo:
    summary = None
    if with_summary and record.summary_hash:
        summary = str(store.artifact_json(record.summary_hash).get("summary", ""))
    return SessionInfo(
        id=record.id,
        parent_id=record.parent_id,
        root_id=record.root_id,
        depth=record.depth,
        role=record.role,
        state=record.state,
        reason=record.state_reason,
        provider=record.provider,
        model=record.model,
        budget=record.budget,
        usage=record.usage,
        spent=record.usage + record.children_spent + record.carved,
        spawn_count=record.spawn_count,
        capabilities=record.capabilities,
        workspace=record.workspace,
        created_at=record.created_at,
        ended_at=record.ended_at,
        summary=summary,
    )


def build_forest(store: Store, records: list[SessionRecord]) -> list[SessionNode]:
    """Nest sessions under their parents; roots (or orphans of the selection) on top."""
    by_parent: dict[str | None, list[SessionRecord]] = {}
    ids = {r.id for r in records}
    for r in records:
        key = r.parent_id if r.parent_id in ids else None
        by_parent.setdefault(key, []).append(r)

    def node(r: SessionRecord) -> SessionNode:
        kids = sorted(by_parent.get(r.id, []), key=lambda c: c.spawn_index)
        return SessionNode(session=info(store, r, with_summary=False),
                           children=[node(k) for k in kids])

    return [node(r) for r in by_parent.get(None, [])]
