"""Public, read-only views of what the store holds (pydantic, frozen, JSON-ready).

The runtime's reads return these, never the store's own records: a view is a stable
contract; a record is an implementation detail that may change with the schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from sessiontree._budget import Budget, Usage
from sessiontree._limits import SupervisorPolicy
from sessiontree._states import JobState, SessionState, ToolCallState
from sessiontree.persistence.capabilities import CapabilityToken, read_tokens
from sessiontree.persistence.records import (
    EventRecord,
    JobRecord,
    MailboxEntry,
    MessageRecord,
    SessionRecord,
    ToolCallRecord,
)
from sessiontree.persistence.spans import SpanRecord
from sessiontree.persistence.store import Store


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class SessionInfo(_View):
    """One session as the host sees it. ``spent`` is its own usage plus what its ended
    children's subtrees spent plus ``carved``, the budget its live children hold
    (carved out of this session's, returned unused when they end); ``summary`` is its
    final answer once it completed, or its latest answer while a conversational session
    waits ``idle`` (``None`` before, and for sessions that failed); ``meta`` is what the
    host gave at creation. Supervision: its ``restart`` type, ``shutdown`` seconds and
    whether it is ``significant``; for its children, ``child_strategy``, ``supervisor``
    (its supervisor intensity) and ``auto_shutdown``; ``keep_open`` if conversational.
    ``capabilities`` are its effective capabilities now (its live tokens: not revoked,
    not expired); ``capability_token_ids`` every token it was issued (see
    :meth:`Runtime.capability_tokens`)."""

    id: str
    parent_id: str | None
    root_id: str
    depth: int
    role: str
    state: SessionState
    reason: str | None
    provider: str
    model: str
    budget: Budget
    usage: Usage
    spent: Usage
    carved: Usage
    spawn_count: int
    capabilities: tuple[str, ...]
    workspace: str | None
    capability_token_ids: tuple[str, ...] = ()
    created_at: float
    ended_at: float | None
    meta: dict[str, Any] = {}
    summary: str | None = None
    restart: str = "transient"
    child_strategy: str = "one_for_one"
    supervisor: SupervisorPolicy = SupervisorPolicy()
    auto_shutdown: str = "never"
    significant: bool = False
    shutdown: float = 5.0
    keep_open: bool = False

    @property
    def terminal(self) -> bool:
        """True once the session ended (``completed``, ``failed`` or ``cancelled``)."""
        return self.state.terminal


class SessionNode(_View):
    """A session and its children (in spawn order): one node of :meth:`Runtime.tree`."""

    session: SessionInfo
    children: list[SessionNode] = []

    def as_json(self) -> dict[str, Any]:
        """The subtree as plain JSON (what ``sessiontree tree --json`` prints)."""
        s = self.session
        return {
            "id": s.id,
            "parent_id": s.parent_id,
            "role": s.role,
            "state": s.state.value,
            "reason": s.reason,
            "depth": s.depth,
            "usage": s.usage.model_dump(mode="json"),
            "spent": s.spent.model_dump(mode="json"),
            "budget": s.budget.model_dump(mode="json"),
            "summary": s.summary,
            "children": [c.as_json() for c in self.children],
        }

    def walk(self) -> list[SessionInfo]:
        """This node's session and every descendant, depth first, in spawn order."""
        out = [self.session]
        for child in self.children:
            out.extend(child.walk())
        return out


class JobInfo(_View):
    """One model_run job: ``attempt`` grows with every restart or recovery."""

    id: str
    session_id: str
    root_id: str
    state: JobState
    attempt: int
    provider: str
    not_before: float | None
    reason: str | None
    created_at: float


class ToolCallInfo(_View):
    """One tool call of the journal (intent before the tool ran, result after)."""

    id: str
    session_id: str
    job_id: str | None
    message_seq: int
    idx: int
    tool: str
    effect: str
    state: ToolCallState
    attempts: int
    idempotency_key: str
    args_hash: str
    result_hash: str | None


class MessageInfo(_View):
    """One message of a session's history, with its place in the hash chain and its
    trust (``untrusted`` for tool results and anything else from outside)."""

    session_id: str
    seq: int
    role: str
    body: dict[str, Any]
    trust: str
    provenance: dict[str, Any]
    artifact_hash: str
    chain_hash: str
    created_at: float


class MailboxPost(_View):
    """One post in a session's persisted mailbox (an announce-back, today)."""

    session_id: str
    kind: str
    sender_id: str
    body: dict[str, Any]
    created_at: float
    consumed_at: float | None


class EventInfo(_View):
    """One Flight Recorder event. ``seq`` orders events in the store (use it as
    ``after=`` to read on); ``payload`` fits the schema registered for ``type``."""

    seq: int
    event_id: str
    ts: float
    type: str
    model_session_id: str | None
    root_id: str | None
    job_id: str | None
    trace_id: str | None
    span_id: str | None
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The event as one JSON object (a line of ``sessiontree events --json``)."""
        return self.model_dump(mode="json", exclude={"seq"})


def info(store: Store, record: SessionRecord, *, with_summary: bool = True) -> SessionInfo:
    issued = read_tokens(store, session_ids=[record.id])
    now = store.clock.now()
    summary = None
    if with_summary and record.summary_hash:
        summary = str(store.artifact_json(record.summary_hash).get("summary", ""))
    return SessionInfo(
        id=record.id,
        parent_id=record.parent_id,
        root_id=record.root_id,
        depth=record.depth,
        role=record.role,
        state=SessionState(record.state),
        reason=record.state_reason,
        provider=record.provider,
        model=record.model,
        budget=record.budget,
        usage=record.usage,
        spent=record.usage + record.children_spent + record.carved,
        carved=record.carved,
        spawn_count=record.spawn_count,
        capabilities=tuple(dict.fromkeys(t.capability for t in issued if t.live(now))),
        capability_token_ids=tuple(t.id for t in issued),
        workspace=record.workspace,
        created_at=record.created_at,
        ended_at=record.ended_at,
        meta=record.meta,
        summary=summary,
        restart=record.restart,
        child_strategy=record.child_strategy,
        supervisor=SupervisorPolicy(max_restarts=record.child_max_restarts,
                                    period=record.child_period),
        auto_shutdown=record.auto_shutdown,
        significant=record.significant,
        shutdown=record.shutdown,
        keep_open=record.keep_open,
    )


def build_forest(
    store: Store, records: list[SessionRecord], *, with_summary: bool = True
) -> list[SessionNode]:
    """Nest sessions under their parents; roots (or orphans of the selection) on top.
    ``with_summary=False`` skips reading each ended session's answer (live views)."""
    by_parent: dict[str | None, list[SessionRecord]] = {}
    ids = {r.id for r in records}
    for r in records:
        key = r.parent_id if r.parent_id in ids else None
        by_parent.setdefault(key, []).append(r)

    def node(r: SessionRecord) -> SessionNode:
        kids = sorted(by_parent.get(r.id, []), key=lambda c: c.spawn_index)
        return SessionNode(session=info(store, r, with_summary=with_summary),
                           children=[node(k) for k in kids])

    return [node(r) for r in by_parent.get(None, [])]


def job_info(r: JobRecord) -> JobInfo:
    return JobInfo(id=r.id, session_id=r.session_id, root_id=r.root_id, state=JobState(r.state),
                   attempt=r.attempt, provider=r.provider, not_before=r.not_before,
                   reason=r.reason, created_at=r.created_at)


def tool_call_info(r: ToolCallRecord) -> ToolCallInfo:
    return ToolCallInfo(
        id=r.id, session_id=r.session_id, job_id=r.job_id, message_seq=r.message_seq,
        idx=r.idx, tool=r.tool, effect=r.effect, state=ToolCallState(r.state),
        attempts=r.attempts, idempotency_key=r.idempotency_key, args_hash=r.args_hash,
        result_hash=r.result_hash)


def message_info(r: MessageRecord) -> MessageInfo:
    return MessageInfo(session_id=r.session_id, seq=r.seq, role=r.role, body=r.body,
                       trust=r.trust, provenance=r.provenance, artifact_hash=r.artifact_hash,
                       chain_hash=r.chain_hash, created_at=r.created_at)


def mailbox_post(r: MailboxEntry) -> MailboxPost:
    return MailboxPost(session_id=r.session_id, kind=r.kind, sender_id=r.sender_id, body=r.body,
                       created_at=r.created_at, consumed_at=r.consumed_at)


def event_info(r: EventRecord) -> EventInfo:
    return EventInfo(seq=r.seq, event_id=r.event_id, ts=r.ts, type=r.type,
                     model_session_id=r.model_session_id, root_id=r.root_id, job_id=r.job_id,
                     trace_id=r.trace_id, span_id=r.span_id, payload=r.payload)


class CapabilityTokenInfo(_View):
    """One capability token: the capability (a name, optionally ``:<scope>``), the session
    it was issued to, the token it was derived from (None: given by the host to a root),
    when it expires (None: never) and whether it was revoked, and why. ``live`` is
    whether it counts now (not revoked, not expired)."""

    id: str
    session_id: str
    root_id: str
    capability: str
    derived_from: str | None
    expires_at: float | None
    revoked: bool
    revoked_reason: str | None
    created_at: float
    live: bool


def token_info(t: CapabilityToken, now: float) -> CapabilityTokenInfo:
    return CapabilityTokenInfo(
        id=t.id, session_id=t.session_id, root_id=t.root_id, capability=t.capability,
        derived_from=t.derived_from, expires_at=t.expires_at, revoked=t.revoked,
        revoked_reason=t.revoked_reason, created_at=t.created_at, live=t.live(now))


class SpanInfo(_View):
    """One span of a session tree's trace: a session's life (``kind="session"``), one
    model_run (``"model_run"``) or one tool call (``"tool_call"``). ``end`` and
    ``status`` (``ok``, ``error`` or ``cancelled``) are None while it is open; tokens and
    cost are the model usage charged inside it (a session's: its own runs')."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    name: str
    model_session_id: str
    root_id: str
    job_id: str | None
    call_id: str | None
    start: float
    end: float | None
    status: str | None
    status_detail: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    attempt: int
    attributes: dict[str, Any]

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while the span is open."""
        return None if self.end is None else max(0.0, self.end - self.start)


def span_info(r: SpanRecord) -> SpanInfo:
    return SpanInfo(**vars(r))
