"""Peewee models: the tables of a store.

Model classes are bound per store (:func:`bind_models`) so two stores in one process
never share a connection: no hidden globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee as pw


class _Base(pw.Model):
    pass


class SessionRow(_Base):
    id = pw.CharField(primary_key=True)
    parent_id = pw.CharField(null=True, index=True)
    root_id = pw.CharField(index=True)
    depth = pw.IntegerField()
    spawn_index = pw.IntegerField(default=0)
    role = pw.CharField()
    # no index: it cost 3% of a model_run (two index pages a state change); a tree's
    # sessions by state are found through root_id, all of them by a scan (at open)
    state = pw.CharField()
    state_reason = pw.CharField(null=True)
    provider = pw.CharField()
    model = pw.CharField()
    capabilities = pw.TextField(default="[]")
    budget = pw.TextField()
    usage = pw.TextField()
    children_spent = pw.TextField()
    carved = pw.TextField()
    spawn_count = pw.IntegerField(default=0)
    max_children = pw.IntegerField(null=True)
    restart = pw.CharField(default="transient")
    child_strategy = pw.CharField(default="one_for_one")
    restart_log = pw.TextField(default="[]")
    # supervision (issue 19): this session's shutdown and significance as a child, and
    # its supervisor intensity and auto-shutdown as a parent; conversational sessions
    shutdown = pw.FloatField(default=5.0)
    significant = pw.BooleanField(default=False)
    auto_shutdown = pw.CharField(default="never")
    child_max_restarts = pw.IntegerField(default=5)
    child_period = pw.FloatField(default=60.0)
    child_restart_log = pw.TextField(default="[]")
    keep_open = pw.BooleanField(default=False)
    workspace = pw.TextField(null=True)
    task_hash = pw.CharField(null=True)
    summary_hash = pw.CharField(null=True)
    spawn_key = pw.CharField(null=True, unique=True)
    checkpoint_seq = pw.IntegerField(default=0)
    message_seq = pw.IntegerField(default=0)
    message_head = pw.CharField(default="")
    announced = pw.BooleanField(default=False)
    meta = pw.TextField(default="{}")
    created_at = pw.FloatField()
    updated_at = pw.FloatField()
    ended_at = pw.FloatField(null=True)

    class Meta:
        without_rowid = True  # one B-tree, not a table plus a key index: fewer pages a commit


class ArtifactRow(_Base):
    hash = pw.CharField(primary_key=True)
    data = pw.BlobField()
    size = pw.IntegerField()
    created_at = pw.FloatField()

    class Meta:
        without_rowid = True  # one B-tree, not a table plus a key index: fewer pages a commit


class MessageRow(_Base):
    session_id = pw.CharField()
    seq = pw.IntegerField()
    role = pw.CharField()
    artifact_hash = pw.CharField()
    chain_hash = pw.CharField()
    trust = pw.CharField()
    provenance = pw.TextField(default="{}")
    created_at = pw.FloatField()

    class Meta:
        primary_key = pw.CompositeKey("session_id", "seq")
        without_rowid = True


class JobRow(_Base):
    id = pw.CharField(primary_key=True)
    order = pw.IntegerField(index=True)  # enqueue order, assigned under the write lock
    session_id = pw.CharField(index=True)
    root_id = pw.CharField()
    kind = pw.CharField(default="model_run")
    state = pw.CharField(index=True)
    attempt = pw.IntegerField(default=1)
    provider = pw.CharField()
    not_before = pw.FloatField(null=True)
    reason = pw.CharField(null=True)
    input_hash = pw.CharField(null=True)  # a host's message the run answers (Runtime.send)
    input_seq = pw.IntegerField(null=True)  # its seq once appended to the history
    created_at = pw.FloatField()
    started_at = pw.FloatField(null=True)
    ended_at = pw.FloatField(null=True)

    class Meta:
        without_rowid = True  # one B-tree, not a table plus a key index: fewer pages a commit


class CheckpointRow(_Base):
    session_id = pw.CharField()
    seq = pw.IntegerField()
    state = pw.CharField()
    message_seq = pw.IntegerField()
    message_head = pw.CharField()
    open_tool_calls = pw.TextField()
    awaited_children = pw.TextField()
    usage = pw.TextField()
    job_id = pw.CharField(null=True)
    attempt = pw.IntegerField(default=0)
    created_at = pw.FloatField()

    class Meta:
        primary_key = pw.CompositeKey("session_id", "seq")
        without_rowid = True


class ToolCallRow(_Base):
    id = pw.CharField(primary_key=True)
    session_id = pw.CharField(index=True)
    job_id = pw.CharField(null=True)
    message_seq = pw.IntegerField()
    idx = pw.IntegerField()
    tool = pw.CharField()
    args_hash = pw.CharField()
    idempotency_key = pw.CharField()
    effect = pw.CharField()
    state = pw.CharField()  # pending | intent | done | failed | waiting
    result_hash = pw.CharField(null=True)
    attempts = pw.IntegerField(default=0)
    created_at = pw.FloatField()
    finished_at = pw.FloatField(null=True)

    class Meta:
        without_rowid = True  # one B-tree, not a table plus a key index: fewer pages a commit


class MailboxRow(_Base):
    id = pw.AutoField()
    session_id = pw.CharField()
    kind = pw.CharField()
    sender_id = pw.CharField()
    body_hash = pw.CharField()
    created_at = pw.FloatField()
    consumed_at = pw.FloatField(null=True)

    class Meta:
        # A child announces back exactly once: the store refuses a second row.
        indexes = ((("session_id", "kind", "sender_id"), True),)


class EventRow(_Base):
    # An append-only log. Every index costs pages per commit (a (model_session_id,
    # job_id) one wrote a sixth more bytes a model_run; the unique one on event_id that
    # stores up to schema 3 had cost 2% of a model_run), so there is one, on
    # model_session_id: a session's events, and a job's (its session's with that
    # job_id, or others' within the job's lifetime). A time range is a range of the
    # primary key, found by a binary search on ``ts`` (ids grow with store time); a
    # tree's events are found through its sessions (session.root_id is indexed); a type
    # prefix is a range of names within what the other filters select.
    id = pw.AutoField()
    event_id = pw.CharField()  # unique by construction (``txbase.event_id``)
    ts = pw.FloatField()
    type = pw.CharField()
    model_session_id = pw.CharField(null=True, index=True)
    root_id = pw.CharField(null=True)
    job_id = pw.CharField(null=True)
    trace_id = pw.CharField(null=True)
    span_id = pw.CharField(null=True)
    payload = pw.TextField()


class SpanRow(_Base):
    # Keyed by trace first: a tree's spans are one range of one B-tree, no other index.
    trace_id = pw.CharField()
    span_id = pw.CharField()
    parent_span_id = pw.CharField(null=True)
    kind = pw.CharField()  # session | model_run | tool_call
    name = pw.CharField()
    model_session_id = pw.CharField()
    root_id = pw.CharField()
    job_id = pw.CharField(null=True)
    call_id = pw.CharField(null=True)
    start_ts = pw.FloatField()
    end_ts = pw.FloatField(null=True)
    status = pw.CharField(null=True)  # None while open; ok | error | cancelled
    status_detail = pw.CharField(null=True)
    input_tokens = pw.IntegerField(default=0)
    output_tokens = pw.IntegerField(default=0)
    cost = pw.FloatField(default=0.0)
    attempt = pw.IntegerField(default=0)
    attributes = pw.TextField(default="{}")

    class Meta:
        primary_key = pw.CompositeKey("trace_id", "span_id")
        without_rowid = True


class MetaRow(_Base):
    key = pw.CharField(primary_key=True)
    value = pw.TextField()


class OwnerRow(_Base):
    id = pw.IntegerField(primary_key=True)
    owner_id = pw.CharField()
    pid = pw.IntegerField()
    host = pw.CharField()
    proc_start = pw.CharField(default="")
    acquired_at = pw.FloatField()
    heartbeat_at = pw.FloatField()


class WorkspaceRow(_Base):
    """A session's workspace binding (``sessiontree.workspace``): where its file tools
    work, in which mode, and -- in ``worktree`` mode -- its git worktree and branch."""

    session_id = pw.CharField(primary_key=True)
    mode = pw.CharField()  # locked | worktree
    path = pw.TextField()  # the directory the session's file tools see
    owner_id = pw.CharField()  # the session whose directory it is (itself, unless shared)
    repo = pw.TextField(null=True)  # worktree mode: the repository's main checkout
    common_dir = pw.TextField(null=True)  # worktree mode: the repository's git dir
    git_dir = pw.TextField(null=True)  # worktree mode: the worktree's own git dir
    branch = pw.CharField(null=True)
    start = pw.CharField(null=True)  # what the branch starts from (a commit or a branch)
    base = pw.CharField(null=True)  # the commit it started from, once created
    state = pw.CharField()  # pending | active | removed
    created_at = pw.FloatField()
    updated_at = pw.FloatField()

    class Meta:
        without_rowid = True


class PathLeaseRow(_Base):
    """A path lease in a ``locked`` workspace: reads share, writes exclude."""

    id = pw.AutoField()
    workspace = pw.TextField()  # the directory (WorkspaceRow.path)
    pattern = pw.TextField()  # a path or glob relative to it
    session_id = pw.CharField(index=True)
    mode = pw.CharField()  # read | write
    owner_id = pw.CharField(null=True)  # the store owner (host process) that took it
    acquired_at = pw.FloatField()
    expires_at = pw.FloatField(null=True)  # None: until the session ends

    class Meta:
        indexes = ((("workspace", "pattern"), False),)


class CapabilityTokenRow(_Base):
    """A capability token (``sessiontree.tools.tokens``): one capability issued to one
    session, derived from a parent's token (None: given by the host to a root)."""

    id = pw.CharField(primary_key=True)
    session_id = pw.CharField(index=True)
    root_id = pw.CharField()
    capability = pw.TextField()  # a name with an optional scope: fs.write:src/**
    derived_from = pw.CharField(null=True, index=True)
    expires_at = pw.FloatField(null=True)
    revoked = pw.BooleanField(default=False)
    revoked_reason = pw.TextField(null=True)
    created_at = pw.FloatField()
    seq = pw.IntegerField(default=0)  # issue order within the session

    class Meta:
        without_rowid = True


class ConsentRow(_Base):
    """The host's decision about sending one tree's data to one cloud provider."""

    root_id = pw.CharField()
    provider = pw.CharField()
    state = pw.CharField()  # granted | denied | revoked
    by = pw.CharField()  # host | operator (CLI)
    updated_at = pw.FloatField()

    class Meta:
        primary_key = pw.CompositeKey("root_id", "provider")
        without_rowid = True


class CommandRow(_Base):
    """An operator's control written to the store (``persistence.commands``): applied by
    the host that holds the store, now or at its next open, then settled."""

    seq = pw.AutoField()  # the order commands are applied in
    id = pw.CharField(unique=True)
    kind = pw.CharField()  # cancel | pause | resume | retry | resolve | consent | revoke
    target = pw.CharField()  # a session id (a call id for resolve, a token id for revoke)
    subtree = pw.BooleanField(default=False)
    args = pw.TextField(default="{}")
    by = pw.CharField()
    note = pw.TextField(null=True)
    created_at = pw.FloatField()
    state = pw.CharField(index=True)  # pending | applied | refused
    outcome = pw.TextField(null=True)
    settled_at = pw.FloatField(null=True)


class PauseRow(_Base):
    """A session an operator paused: nothing is dispatched for it until it is resumed."""

    session_id = pw.CharField(primary_key=True)
    by = pw.CharField()
    note = pw.TextField(null=True)
    since = pw.FloatField()

    class Meta:
        without_rowid = True


_TABLES: dict[str, type[_Base]] = {
    "session": SessionRow,
    "artifact": ArtifactRow,
    "message": MessageRow,
    "job": JobRow,
    "checkpoint": CheckpointRow,
    "tool_call": ToolCallRow,
    "mailbox": MailboxRow,
    "event": EventRow,
    "span": SpanRow,
    "meta": MetaRow,
    "owner": OwnerRow,
    "workspace": WorkspaceRow,
    "path_lease": PathLeaseRow,
    "capability_token": CapabilityTokenRow,
    "consent": ConsentRow,
    "command": CommandRow,
    "pause": PauseRow,
}


@dataclass(frozen=True)
class Models:
    session: type[SessionRow]
    artifact: type[ArtifactRow]
    message: type[MessageRow]
    job: type[JobRow]
    checkpoint: type[CheckpointRow]
    tool_call: type[ToolCallRow]
    mailbox: type[MailboxRow]
    event: type[EventRow]
    span: type[SpanRow]
    meta: type[MetaRow]
    owner: type[OwnerRow]
    workspace: type[WorkspaceRow]
    path_lease: type[PathLeaseRow]
    capability_token: type[CapabilityTokenRow]
    consent: type[ConsentRow]
    command: type[CommandRow]
    pause: type[PauseRow]

    def all(self) -> list[type[_Base]]:
        return [getattr(self, name) for name in _TABLES]


def bind_models(database: pw.Database) -> Models:
    """Subclass every model with ``database`` bound, for this store only."""
    bound: dict[str, Any] = {}
    for table, base in _TABLES.items():
        # peewee does not inherit ``without_rowid``: name it again, or the table gets a
        # rowid B-tree plus a key index (two B-trees written a row, not one)
        meta = type("Meta", (), {"database": database, "table_name": table,
                                 "without_rowid": base._meta.without_rowid})
        bound[table] = type(base.__name__, (base,), {"Meta": meta, "__module__": __name__})
    return Models(**bound)
