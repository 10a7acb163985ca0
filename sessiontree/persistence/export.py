"""Export a session tree to JSON Lines, and verify such a file anywhere.

``export_tree`` writes one JSON object per line, enough to audit or replay the tree
elsewhere: a ``header``; every ``session`` of the subtree; each session's ``message``\\ s
in order with their bodies (the artifact's JSON) and chain hashes; its ``tool_call``\\ s
with their arguments; the other ``artifact``\\ s the tree names (tasks, summaries,
announce-backs), as their exact bytes; its ``event``\\ s and ``span``\\ s; and an ``end``
line with the counts and the blake3 digest of every line before it.

``verify_export`` recomputes everything a reader can check without the store: each
body's hash, each session's chain and head, each artifact's hash, each event's payload
against the catalogue, that each span's parent is in the file (or is the spawning call
of the exported subtree's root), the counts and the digest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import blake3
from pydantic import BaseModel, ConfigDict

from sessiontree._errors import InvalidInput
from sessiontree.persistence.artifacts import canonical_bytes, chain_hash, content_hash
from sessiontree.persistence.events import validate_payload
from sessiontree.persistence.recorder import spans as stored_spans
from sessiontree.persistence.store import Store
from sessiontree.persistence.verify import VerifyReport

FORMAT, VERSION = "sessiontree-export", 1


class ExportReport(BaseModel):
    """What :meth:`Runtime.export_tree` wrote: the file, and how many of each kind."""

    model_config = ConfigDict(frozen=True)

    path: str
    root_id: str
    counts: dict[str, int]


def _subtree(store: Store, session_id: str) -> list[Any]:
    top = store.session(session_id)
    tree = store.sessions(root_id=top.root_id)
    by_parent: dict[str | None, list[Any]] = {}
    for s in tree:
        by_parent.setdefault(s.parent_id, []).append(s)
    out, todo = [], [top]
    while todo:
        s = todo.pop()
        out.append(s)
        todo.extend(sorted(by_parent.get(s.id, []), key=lambda c: -c.spawn_index))
    return out


def _session_line(s: Any) -> dict[str, Any]:
    line = {k: v for k, v in vars(s).items()
            if k not in ("budget", "usage", "children_spent", "carved")}
    line.update(kind="session", capabilities=list(s.capabilities), restart_log=list(s.restart_log),
                budget=s.budget.model_dump(mode="json"), usage=s.usage.model_dump(mode="json"),
                children_spent=s.children_spent.model_dump(mode="json"),
                carved=s.carved.model_dump(mode="json"))
    return line


def export_tree(store: Store, session_id: str, out: str | Path) -> ExportReport:
    """Write the subtree of ``session_id`` (the whole tree for a root) to ``out``.
    Raises :class:`UnknownSession`; the file is replaced whole or not at all."""
    sessions = _subtree(store, session_id)
    target = Path(out)
    partial = target.with_name(target.name + ".partial")
    digest = blake3.blake3()
    counts: dict[str, int] = {}

    with partial.open("w", encoding="utf-8") as fh:
        def write(line: dict[str, Any]) -> None:
            data = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
            digest.update(data.encode("utf-8"))
            fh.write(data)
            counts[line["kind"]] = counts.get(line["kind"], 0) + 1

        write({"kind": "header", "format": FORMAT, "version": VERSION, "session_id": session_id,
               "root_id": sessions[0].root_id, "parent_span_id": None})
        named: set[str] = set()
        for s in sessions:
            write(_session_line(s))
            named.update(h for h in (s.task_hash, s.summary_hash) if h)
            for m in store.messages(s.id):
                write({"kind": "message", "session_id": s.id, "seq": m.seq, "role": m.role,
                       "artifact_hash": m.artifact_hash, "chain_hash": m.chain_hash,
                       "trust": m.trust, "provenance": m.provenance, "created_at": m.created_at,
                       "body": m.body})
            for c in store.tool_calls(s.id):
                write({"kind": "tool_call", **vars(c), "args": store.artifact_json(c.args_hash)})
            for post in store.mailbox(s.id):
                named.add(post.body_hash)
        for digest_name in sorted(named):
            write({"kind": "artifact", "hash": digest_name,
                   "data": store.artifact(digest_name).decode("utf-8")})
        for s in sessions:
            for e in store.events(session_id=s.id):
                write({"kind": "event", "seq": e.seq, **e.as_json()})
        ids = {s.id for s in sessions}
        for span in stored_spans(store, root_id=sessions[0].root_id):
            if span.model_session_id in ids:
                fields = {k: v for k, v in vars(span).items() if k != "kind"}
                write({**fields, "span_kind": span.kind, "kind": "span"})
        fh.write(json.dumps({"kind": "end", "counts": dict(counts),
                             "digest": digest.hexdigest()}, sort_keys=True) + "\n")
    partial.replace(target)
    return ExportReport(path=str(target), root_id=sessions[0].root_id, counts=counts)


class _Checker:
    def __init__(self) -> None:
        self.heads: dict[str, tuple[int, str]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.spans: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}

    def line(self, kind: str, line: dict[str, Any]) -> str | None:
        """Check one line; return what is wrong with it, if anything."""
        if kind == "session":
            self.sessions[line["id"]] = line
        elif kind == "message":
            where = f"message {line['session_id']}#{line['seq']}"
            seq, head = self.heads.get(line["session_id"], (0, ""))
            if line["seq"] != seq + 1:
                return f"{where}: sequence gap after {seq}"
            if content_hash(canonical_bytes(line["body"])) != line["artifact_hash"]:
                return f"{where}: body does not match its artifact hash"
            if chain_hash(head, line["artifact_hash"]) != line["chain_hash"]:
                return f"{where}: chain hash does not verify"
            self.heads[line["session_id"]] = (line["seq"], line["chain_hash"])
        elif kind == "tool_call":
            if content_hash(canonical_bytes(line["args"])) != line["args_hash"]:
                return f"tool call {line['id']}: arguments do not match their hash"
        elif kind == "artifact":
            if content_hash(line["data"].encode("utf-8")) != line["hash"]:
                return f"artifact {line['hash']}: content does not match hash"
        elif kind == "event":
            try:
                validate_payload(line["type"], line["payload"])
            except InvalidInput as exc:
                return f"event {line['event_id']}: {exc}"
        elif kind == "span":
            self.spans.append(line)
        else:
            return f"unknown line kind {kind!r}"
        return None

    def finish(self, header: dict[str, Any]) -> str | None:
        for sid, s in self.sessions.items():
            if self.heads.get(sid, (0, "")) != (s["message_seq"], s["message_head"]):
                return f"session {sid}: head does not match its messages"
        ids = {s["span_id"] for s in self.spans}
        top = self.sessions.get(header["session_id"], {})
        for s in self.spans:
            parent = s["parent_span_id"]
            outside = s["model_session_id"] == header["session_id"] and top.get("parent_id")
            if parent is not None and parent not in ids and not outside:
                return f"span {s['span_id']}: parent {parent} is not in the export"
        return None


def verify_export(path: str | Path) -> VerifyReport:
    """Check an export file (see the module docstring); never raises for what is wrong
    in the file, only :class:`InvalidInput` for a path that cannot be read."""
    try:
        lines = Path(path).read_bytes().splitlines(keepends=True)
    except OSError as exc:
        raise InvalidInput(f"cannot read export {path}: {exc}") from exc

    def bad(why: str) -> VerifyReport:
        return VerifyReport(ok=False, first_bad=why)

    if len(lines) < 2:
        return bad("not a sessiontree export: too short")
    try:
        parsed = [json.loads(raw) for raw in lines]
    except ValueError as exc:
        return bad(f"a line is not JSON: {exc}")
    header, end, body = parsed[0], parsed[-1], parsed[1:-1]
    if header.get("kind") != "header" or header.get("format") != FORMAT:
        return bad("not a sessiontree export: no header")
    if end.get("kind") != "end":
        return bad("the export is truncated: no end line")
    digest = blake3.blake3(b"".join(lines[:-1])).hexdigest()
    if digest != end.get("digest"):
        return bad("the export's digest does not match its lines")
    check = _Checker()
    counts: dict[str, int] = {"header": 1}
    for line in body:
        kind = line.get("kind", "")
        counts[kind] = counts.get(kind, 0) + 1
        try:
            problem = check.line(kind, line)
        except (KeyError, TypeError) as exc:
            problem = f"a {kind or 'line'} lacks {exc}"
        if problem:
            return bad(problem)
    if counts != end.get("counts"):
        return bad(f"counts {counts} do not match the end line's {end.get('counts')}")
    problem = check.finish(header)
    if problem:
        return bad(problem)
    return VerifyReport(ok=True, artifacts=counts.get("artifact", 0) + counts.get("message", 0),
                        messages=counts.get("message", 0), sessions=counts.get("session", 0),
                        events=counts.get("event", 0), spans=counts.get("span", 0))
