"""Session actors run on reused threads: a thread is parked when its actor stops and
handed to the next one; an actor never waits for a thread."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any, cast

import pykka

import sessiontree as st
from sessiontree.actors.session import SessionActor
from sessiontree.actors.threads import ActorThreads

WAIT = 10.0


def test_an_ended_actor_loop_parks_its_thread_for_the_next() -> None:
    pool = ActorThreads(name="SessionActor-test", keep=4)
    seen: list[threading.Thread] = []
    try:
        for _ in range(5):
            done = threading.Event()
            pool.run(lambda done=done: (seen.append(threading.current_thread()), done.set()))
            assert done.wait(WAIT)
            assert pool.wait_idle(WAIT)
        assert pool.started == 1
        assert len(set(seen)) == 1
    finally:
        pool.close()
    assert not seen[0].is_alive()


def test_a_busy_pool_starts_a_thread_rather_than_make_an_actor_wait() -> None:
    pool = ActorThreads(name="SessionActor-test", keep=1)
    release = threading.Event()
    entered = [threading.Event() for _ in range(3)]
    try:
        for e in entered:
            pool.run(lambda e=e: (e.set(), release.wait(WAIT)))
        assert all(e.wait(WAIT) for e in entered)  # all three run at once
        assert pool.started == 3
        assert not pool.wait_idle(0)
        release.set()
        assert pool.wait_idle(WAIT)
        assert len(pool._parked) == 1  # at most ``keep`` stay parked; the rest ended
    finally:
        pool.close()


def test_a_failing_loop_ends_its_thread_and_the_pool_goes_on() -> None:
    pool = ActorThreads(name="SessionActor-test")
    try:
        pool.run(lambda: (_ for _ in ()).throw(SystemExit()))
        assert pool.wait_idle(WAIT)
        done = threading.Event()
        pool.run(done.set)
        assert done.wait(WAIT)
        assert pool.started == 2
    finally:
        pool.close()


def test_a_runtime_runs_its_actors_on_the_pool_and_ends_its_threads_at_close(
    db_path: Path,
) -> None:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        return st.reply("done") if turn.turn >= 4 else st.reply("", st.call("wait_for_children"))

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        sid = rt.create_session("t")
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        assert rt.stats().dispatched == 5
        pool = rt._ctx.actor_threads
        assert pool.wait_idle(WAIT)
        assert 1 <= pool.started <= 5
        names = {t.name for t in threading.enumerate() if t.name.startswith("SessionActor-")}
        assert names  # parked, waiting for the next actor
    assert not [t for t in threading.enumerate() if t.name in names and t.is_alive()]


def test_a_session_actor_sets_all_that_pykkas_init_would() -> None:
    """``actors.threads.init_actor`` stands in for ``pykka.Actor.__init__``: a pykka
    release that sets more there fails here, not in a live actor."""
    plain = pykka.ThreadingActor()
    ours = [SessionActor(cast(Any, None), f"ses_{i}") for i in range(3)]
    for actor in ours:
        for name, value in vars(plain).items():
            if name != "actor_inbox":  # ours is a SimpleQueue (actors.threads.simple_inbox)
                assert type(getattr(actor, name)) is type(value), name
        assert all(callable(getattr(actor.actor_inbox, m)) for m in ("put", "get", "empty"))
        assert actor.actor_ref.actor_class is SessionActor
        assert uuid.UUID(actor.actor_urn).version == 4
    assert len({a.actor_urn for a in ours}) == 3
