"""Hypothesis stateful tests: over random sequences of crashes, cancels, sends, closes
and clock advances, a tree of conversational workers keeps the supervision invariants:

1. at most one running job per session (in the store, and in the provider);
2. every ended child announces back exactly once, and a live one never does;
3. no session of a group being restarted runs while another member's old attempt does;
4. restart counts stay within policy: a session's own, and its parent's supervisor
   intensity (a group restart counting once).

Bounded (a few examples of a dozen steps) so that the suite stays fast; time is a
ManualClock, and between steps the test waits on commits until no run is in flight.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as hs
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import sessiontree as st
from sessiontree.testing import Commits, ManualClock

CHILDREN = 3
POLICY = st.RestartPolicy(max_restarts=2, period=30, backoff_initial=0.5)
SUPERVISOR = st.SupervisorPolicy(max_restarts=3, period=30)


class Watched:
    """The workers' provider: answers ``ok``, crashes on ``crash<k>`` while the
    attempt is at most ``k``; checks, as each call starts, that no other call of the
    same session is in flight (invariant 1)."""

    local = True
    name = "watched"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_call: dict[str, int] = {}  # session -> attempt in a call
        self.violations: list[str] = []
        self.inner = st.ScriptedProvider(self.policy, latency=0.005)  # simulated latency

    def policy(self, turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", *[st.call("spawn_session", role=f"w{i}", task="ok",
                                              keep_open=True) for i in range(CHILDREN)])
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return "root done"
        said = [m.content for m in turn.messages if m.role == "user"][-1]
        if said.startswith("crash") and turn.request.attempt <= int(said[5:]):
            raise RuntimeError(f"{turn.role} crashed on {said}")
        return f"{turn.role}: {said}"

    def complete(self, request: st.ModelRequest, cancel: st.CancelToken) -> st.ModelReply:
        sid, attempt = request.session_id, request.attempt
        with self.lock:
            if sid in self.in_call:
                self.violations.append(f"two calls of {sid} at once")
            self.in_call[sid] = attempt
        try:
            return self.inner.complete(request, cancel)
        except st.Cancelled:
            threading.Event().wait(0.01)  # sleep-ok: a provider slow to stop (simulated)
            raise
        finally:
            with self.lock:
                del self.in_call[sid]


class SupervisionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = TemporaryDirectory()
        self.rt: st.Runtime | None = None

    @initialize(strategy=hs.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]))
    def open_tree(self, strategy: str) -> None:
        self.clock = ManualClock()
        self.provider = Watched()
        self.rt = st.Runtime.open(
            Path(self.tmp.name) / "tree.db", providers=[self.provider], clock=self.clock,
            lease_ttl=3600, limits=st.Limits(restart=POLICY, max_concurrent_runs=2))
        self.seen = Commits(self.rt)
        self.root = self.rt.create_session("r", capabilities=["session.spawn"],
                                           child_strategy=strategy, supervisor=SUPERVISOR)
        self.seen.until(lambda: len(self.rt.children(self.root)) == CHILDREN)  # type: ignore[union-attr]
        self.settle()

    def settle(self) -> None:
        """Wait until no run is in flight and the scheduler dispatched nothing more
        since the last look: the actor threads are idle (each told the scheduler how
        its run ended before it went idle), and a stats ask -- handled after those
        messages -- finds nothing running and nothing new dispatched."""
        rt = self.rt
        assert rt is not None
        before = -1
        while True:
            assert rt._ctx.actor_threads.wait_idle(20)
            stats = rt.stats()
            if stats.running == 0 and stats.dispatched == before:
                return
            before = stats.dispatched

    def child(self, index: int) -> st.SessionInfo:
        assert self.rt is not None
        return self.rt.children(self.root)[index]

    # -- rules ---------------------------------------------------------------------------
    @rule(index=hs.integers(0, CHILDREN - 1), crash=hs.integers(0, 3))
    def send(self, index: int, crash: int) -> None:
        assert self.rt is not None
        worker = self.child(index)
        if not worker.terminal:
            self.rt.send(worker.id, f"crash{crash}" if crash else "ok")
        self.settle()

    @rule(crashes=hs.lists(hs.integers(0, 3), min_size=CHILDREN, max_size=CHILDREN))
    def send_to_all(self, crashes: list[int]) -> None:
        assert self.rt is not None
        for worker, crash in zip(self.rt.children(self.root), crashes, strict=True):
            if not worker.terminal:
                self.rt.send(worker.id, f"crash{crash}" if crash else "ok")
        self.settle()

    @rule(index=hs.integers(0, CHILDREN - 1), which=hs.integers(0, 5))
    def cancel_a_job(self, index: int, which: int) -> None:
        assert self.rt is not None
        live = self.rt.jobs(self.child(index).id, states=["pending", "queued", "running"])
        if live:
            self.rt.cancel_job(live[which % len(live)].id)
        self.settle()

    @rule(index=hs.integers(0, CHILDREN - 1))
    def cancel_a_worker(self, index: int) -> None:
        assert self.rt is not None
        self.rt.cancel(self.child(index).id, note="hypothesis")
        self.settle()

    @rule(index=hs.integers(0, CHILDREN - 1))
    def close_a_worker(self, index: int) -> None:
        assert self.rt is not None
        worker = self.child(index)
        if worker.state == "idle":
            self.rt.close_session(worker.id)
        self.settle()

    @precondition(lambda self: self.rt is not None)
    @rule(seconds=hs.sampled_from([0.5, 1.0, 2.0, 10.0, 31.0]))
    def advance_the_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.settle()

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def one_call_per_session_at_a_time(self) -> None:
        if self.rt is not None:
            assert self.provider.violations == [], self.provider.violations

    @invariant()
    def no_member_starts_while_another_members_old_attempt_runs(self) -> None:
        """From the log (the store orders it): between a member's attempt being
        superseded by its group's restart (its ``RESTARTED``) and that attempt's end
        (its ``STOPPED``), no member of that group is dispatched."""
        if self.rt is None:
            return
        members: dict[str, set[str]] = {}  # parent -> the restart under way's members
        old: dict[str, tuple[str, int]] = {}  # member -> (parent, superseded attempt)
        bad = []
        for e in self.rt.events(root_id=self.root):
            sid, p = e.model_session_id or "", e.payload
            if e.type == "FR-EVT-SESS-GROUP-RESTART":
                members.setdefault(sid, set()).update(p["members"])
            elif e.type == "FR-EVT-SESS-GROUP-STARTED":
                members.pop(sid, None)
            elif e.type == "FR-EVT-SESS-RESTARTED" and p["cause_session_id"] != sid:
                parent = next((k for k, v in members.items() if sid in v), None)
                if parent is not None:
                    old[sid] = (parent, p["attempt"] - 1)
            elif e.type == "FR-EVT-SESS-STOPPED" and sid in old:
                if p["attempt"] == old[sid][1]:
                    del old[sid]
            elif e.type == "FR-EVT-SESS-SCHED-DISPATCHED":
                running_old = [m for m, (parent, _) in old.items()
                               if m != sid and sid in members.get(parent, ())]
                if running_old:
                    bad.append(f"{sid} dispatched while {running_old} ran on (event {e.seq})")
        assert bad == [], (bad, self.trace())

    def trace(self) -> list[str]:
        """The tree's supervision events, one line each (for a failure's message)."""
        assert self.rt is not None
        names = {c.id: c.role for c in self.rt.children(self.root)} | {self.root: "root"}
        keep = ("RESTART", "STOPPED", "GROUP", "CRASHED", "DISPATCHED", "CANCELLED", "STATE")
        return [f"{e.ts:.2f} {names.get(e.model_session_id or '')} {e.type[12:]} "
                f"{ {k: v for k, v in e.payload.items() if k != 'reservation'} }"
                for e in self.rt.events(root_id=self.root) if any(k in e.type for k in keep)]

    @invariant()
    def at_most_one_running_job_per_session(self) -> None:
        if self.rt is not None:
            running = Counter(j.session_id for j in self.rt.jobs(states=["running"]))
            assert all(n <= 1 for n in running.values()), running

    @invariant()
    def every_ended_child_announced_exactly_once(self) -> None:
        if self.rt is None:
            return
        # ended before the mailbox is read: posted; still live after it: not posted
        ended = {w.id for w in self.rt.children(self.root) if w.terminal}
        posts = Counter(p.sender_id for p in self.rt.mailbox(self.root))
        live = {w.id for w in self.rt.children(self.root) if not w.terminal}
        assert all(posts[w] == 1 for w in ended), posts
        assert all(posts[w] == 0 for w in live), posts
        assert all(n == 1 for n in posts.values()), posts

    @invariant()
    def restarts_stay_within_policy(self) -> None:
        if self.rt is None:
            return
        own: dict[str, list[float]] = {}
        supervisor: list[float] = []
        for e in self.rt.events(root_id=self.root):
            if e.type == "FR-EVT-SESS-RESTARTED" and e.payload["cause_session_id"] == e.model_session_id:
                own.setdefault(e.model_session_id or "", []).append(e.ts)
                if e.payload["strategy"] == "one_for_one":
                    supervisor.append(e.ts)
            elif e.type == "FR-EVT-SESS-GROUP-RESTART" and e.payload["counted"]:
                supervisor.append(e.ts)
        for times in own.values():
            assert _most_in_window(times, POLICY.period) <= POLICY.max_restarts
        assert _most_in_window(supervisor, SUPERVISOR.period) <= SUPERVISOR.max_restarts

    def teardown(self) -> None:
        if self.rt is not None:
            self.rt.close()
        self.tmp.cleanup()


def _most_in_window(times: list[float], period: float) -> int:
    """The most events within any ``period`` seconds (a window open at its far end)."""
    return max((sum(1 for t in times if start <= t < start + period) for start in times),
               default=0)


SupervisionMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=12, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow])
test_supervision_invariants_hold_under_random_crashes_cancels_sends_and_time = pytest.mark.timeout(
    300)(SupervisionMachine.TestCase)
