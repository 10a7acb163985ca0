"""The history cache: a model_run reads only what was appended since its session's last
run, and never a history that is not the store's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sessiontree._budget import Budget
from sessiontree.actors.history import HistoryCache
from sessiontree.persistence import open_store


def _session(db: Path) -> tuple[HistoryCache, str]:
    store = open_store(db)
    with store.transaction() as tx:
        rec, _ = tx.create_session(role="r", provider="p", model="m", budget=Budget(),
                                   system="be brief", task="hello")
    return HistoryCache(store, size=2), rec.id


def _append(cache: HistoryCache, sid: str, text: str) -> None:
    with cache.store.transaction() as tx:
        tx.add_message(sid, "assistant", {"role": "assistant", "content": text})


def test_a_load_reads_the_whole_history_then_only_what_was_appended(db_path: Path) -> None:
    cache, sid = _session(db_path)
    first = cache.load(sid)
    assert [m.content for m in first.history] == ["be brief", "hello"]
    _append(cache, sid, "one")
    _append(cache, sid, "two")
    second = cache.load(sid)
    assert [m.content for m in second.history] == ["be brief", "hello", "one", "two"]
    assert second.history[:2] is not None and second.history[0] is first.history[0]  # reused
    assert second.session.message_seq == 4


def test_a_cached_history_that_is_not_the_stores_is_dropped_and_read_whole(db_path: Path) -> None:
    cache, sid = _session(db_path)
    cache.load(sid)
    entry = cache._entries[sid]
    cache._entries[sid] = dataclasses.replace(
        entry, head="0" * 64, messages=tuple(m.model_copy(update={"content": "stale"})
                                              for m in entry.messages))
    _append(cache, sid, "three")
    assert [m.content for m in cache.load(sid).history] == ["be brief", "hello", "three"]


def test_the_cache_holds_at_most_its_size(db_path: Path) -> None:
    cache, sid = _session(db_path)
    others = []
    for _ in range(3):
        with cache.store.transaction() as tx:
            others.append(tx.create_session(role="r", provider="p", model="m",
                                            budget=Budget(), task="x")[0].id)
    for s in [sid, *others]:
        cache.load(s)
    assert list(cache._entries) == others[-2:]
    assert [m.content for m in cache.load(sid).history] == ["be brief", "hello"]


def _message_reads(cache: HistoryCache) -> list[str]:
    seen: list[str] = []
    cache.store.db.connection().set_trace_callback(  # type: ignore[no-untyped-call]
        lambda sql: seen.append(sql) if 'FROM "message"' in sql else None)
    return seen


def test_commits_extend_a_cached_history_so_a_load_reads_no_message(db_path: Path) -> None:
    cache, sid = _session(db_path)
    cache.store.add_listener(cache.on_commit)
    cache.load(sid)
    _append(cache, sid, "one")
    _append(cache, sid, "two")
    reads = _message_reads(cache)
    state = cache.load(sid)
    assert [m.content for m in state.history] == ["be brief", "hello", "one", "two"]
    assert reads == []


def test_an_append_the_cache_did_not_see_drops_the_entry(db_path: Path) -> None:
    cache, sid = _session(db_path)
    cache.load(sid)
    _append(cache, sid, "unseen")  # no listener yet: the entry falls behind
    cache.store.add_listener(cache.on_commit)
    _append(cache, sid, "seen")
    assert sid not in cache._entries
    assert [m.content for m in cache.load(sid).history] == ["be brief", "hello", "unseen", "seen"]


def test_a_new_sessions_history_is_cached_from_its_creation_so_its_first_load_reads_none(
    db_path: Path,
) -> None:
    store = open_store(db_path)
    cache = HistoryCache(store, size=2)
    store.add_listener(cache.on_commit)
    with store.transaction() as tx:
        sid = tx.create_session(role="r", provider="p", model="m", budget=Budget(),
                                system="be brief", task="hello")[0].id
    reads = _message_reads(cache)
    assert [m.content for m in cache.load(sid).history] == ["be brief", "hello"]
    assert reads == []
    with store.transaction() as tx:  # created with no system prompt: seq 1 is the task
        other = tx.create_session(role="r", provider="p", model="m", budget=Budget(),
                                  task="x")[0].id
    assert [m.content for m in cache.load(other).history] == ["x"]
    assert reads == []


def test_the_cache_holds_at_most_its_messages_dropping_the_least_recently_used(
    db_path: Path,
) -> None:
    store = open_store(db_path)
    cache = HistoryCache(store, size=10, max_messages=5)
    store.add_listener(cache.on_commit)
    ids = []
    for _ in range(3):  # two messages each: system prompt and task
        with store.transaction() as tx:
            ids.append(tx.create_session(role="r", provider="p", model="m", budget=Budget(),
                                         system="be brief", task="hello")[0].id)
        cache.load(ids[-1])
    assert list(cache._entries) == ids[1:] and cache._messages == 4
    _append(cache, ids[1], "one")  # a commit extends an entry: 5 messages, still in bound
    assert list(cache._entries) == ids[1:] and cache._messages == 5
    _append(cache, ids[2], "two")  # 6: the least recently used goes
    assert list(cache._entries) == ids[2:] and cache._messages == 3
    assert [m.content for m in cache.load(ids[1]).history] == ["be brief", "hello", "one"]


def test_an_ended_sessions_history_leaves_the_cache(db_path: Path) -> None:
    from sessiontree._reasons import Reason
    from sessiontree._states import SessionState
    from sessiontree.actors.ending import end_session

    cache, sid = _session(db_path)
    cache.store.add_listener(cache.on_commit)
    cache.load(sid)
    assert cache._messages == 2
    with cache.store.transaction() as tx:
        end_session(tx, sid, SessionState.COMPLETED, Reason.COMPLETED, summary={"summary": "x"})
    assert sid not in cache._entries and cache._messages == 0
    assert [m.content for m in cache.load(sid).history] == ["be brief", "hello"]  # read again
