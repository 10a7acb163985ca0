"""Provider back-pressure: the decisions by table, then the scheduler applying them under
a manual clock (cool-down, shrinking and recovering concurrency, requests and tokens
per minute, a run's retries running out)."""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree._reasons import Reason
from sessiontree.supervision.backpressure import (
    Admission,
    Backpressure,
    Cooldown,
    ProviderPressure,
    decide_admission,
    decide_cooldown,
    decide_retry,
    grown_window,
)
from sessiontree.testing import Commits, ManualClock

NOW = 1000.0
POLICY = st.BackpressurePolicy()
WAIT = 20.0


def pressure(**kw: Any) -> ProviderPressure:
    kw.setdefault("ceiling", 4)
    return ProviderPressure(**kw)


# -- decisions -------------------------------------------------------------------------------
@pytest.mark.parametrize("state,running,rate,expected", [
    (pressure(), 0, None, Admission()),
    (pressure(), 3, None, Admission()),
    (pressure(), 4, None, Admission(Reason.PROVIDER_LIMIT)),
    (pressure(window=2.7), 2, None, Admission(Reason.PROVIDER_LIMIT)),      # floor of the window
    (pressure(window=0.4), 0, None, Admission()),                           # never below 1
    (pressure(cooldown_until=NOW + 5), 0, None, Admission(Reason.PROVIDER_COOLDOWN, NOW + 5)),
    (pressure(cooldown_until=NOW), 0, None, Admission()),                   # it ends on time
    (pressure(requests=deque([NOW - 59, NOW - 10])), 0, st.RateLimit(requests_per_minute=2),
     Admission(Reason.REQUESTS_PER_MINUTE, NOW + 1)),
    (pressure(requests=deque([NOW - 61, NOW - 10])), 0, st.RateLimit(requests_per_minute=2),
     Admission()),                                                          # one fell out of the minute
    (pressure(tokens=deque([(NOW - 30, 900)])), 0, st.RateLimit(tokens_per_minute=1000),
     Admission()),                                                          # 900 + 100 reserved fits
    (pressure(tokens=deque([(NOW - 30, 950)])), 0, st.RateLimit(tokens_per_minute=1000),
     Admission(Reason.TOKENS_PER_MINUTE, NOW + 30)),
    (pressure(tokens=deque([(NOW - 61, 950)])), 0, st.RateLimit(tokens_per_minute=1000),
     Admission()),                                                          # older than a minute
    (pressure(in_flight={"job_a": 950}), 1, st.RateLimit(tokens_per_minute=1000),
     Admission(Reason.TOKENS_PER_MINUTE, None)),                            # look again when it ends
    (pressure(), 0, st.RateLimit(tokens_per_minute=10), Admission()),       # nothing counted: admit one
])
def test_admission_table(state: ProviderPressure, running: int, rate: st.RateLimit | None,
                         expected: Admission) -> None:
    assert decide_admission(state, NOW, running, rate, 100) == expected


@pytest.mark.parametrize("state,retry_after,expected", [
    (pressure(), 7.0, Cooldown(7.0, NOW + 7, 2.0)),                          # the provider's hint
    (pressure(), None, Cooldown(1.0, NOW + 1, 2.0)),                         # our default
    (pressure(failures_in_row=3), None, Cooldown(8.0, NOW + 8, 2.0)),        # doubled per failure
    (pressure(), 10_000.0, Cooldown(300.0, NOW + 300, 2.0)),                 # capped
    (pressure(window=1.0), 2.0, Cooldown(2.0, NOW + 2, 1.0)),                # never below 1
    (pressure(cooldown_until=NOW + 20), 2.0, Cooldown(2.0, NOW + 20, 2.0)),  # never shortened
])
def test_cooldown_table(state: ProviderPressure, retry_after: float | None,
                        expected: Cooldown) -> None:
    assert decide_cooldown(state, NOW, retry_after, POLICY) == expected


def test_a_run_is_retried_up_to_max_retries_then_given_up() -> None:
    policy = st.BackpressurePolicy(max_retries=2)
    assert [decide_retry(n, policy) for n in (1, 2, 3)] == [True, True, False]


def test_concurrency_grows_back_by_one_slot_per_window_of_successes_up_to_the_limit() -> None:
    p = pressure(ceiling=8, window=2.0)
    seen = []
    for _ in range(30):
        p.window = grown_window(p)
        seen.append(p.concurrency)
    assert seen[:3] == [2, 2, 3]      # 2 + 1/2 = 2.5, + 1/2.5 = 2.9, + 1/2.9 = 3.24
    assert seen == sorted(seen) and seen[-1] == 8 and max(seen) == 8


def test_a_success_needs_to_wake_the_scheduler_only_while_it_could_admit_a_run() -> None:
    bp = Backpressure(lambda _provider: 4)
    assert not bp.wants_notes(NOW, {})  # no provider seen yet: at rest
    bp.dispatched("p", NOW, "j1", 0)
    assert not bp.wants_notes(NOW, {})  # full window, no cool-down
    assert bp.wants_notes(NOW, {"p": st.RateLimit(requests_per_minute=10)})  # a rate limit
    bp.failed("p", "j1", decide_cooldown(bp.of("p"), NOW, None, POLICY), now=NOW)
    assert bp.wants_notes(NOW, {})  # cooling down, window shrunk
    bp.of("p").cooldown_until = NOW
    assert bp.wants_notes(NOW + 1, {})  # below its full window still
    while bp.of("p").window < 4:
        bp.succeeded("p", NOW + 1, "j2", 0)
    assert not bp.wants_notes(NOW + 1, {})


def test_backpressure_counts_requests_and_tokens_and_forgets_them_after_a_minute() -> None:
    bp = Backpressure(lambda name: 4)
    bp.dispatched("p", NOW, "job_1", 100)
    assert bp.of("p").in_flight == {"job_1": 100}
    bp.succeeded("p", NOW + 1, "job_1", 640)
    assert bp.of("p").in_flight == {} and list(bp.of("p").tokens) == [(NOW + 1, 640)]
    bp.dispatched("p", NOW + 62, "job_2", 100)
    assert list(bp.of("p").requests) == [NOW + 62] and list(bp.of("p").tokens) == []


# -- the scheduler applying them -------------------------------------------------------------------
class Flaky:
    """A provider that fails with the given ProviderErrors first, then answers."""

    local = True

    def __init__(self, name: str, errors: list[st.ProviderError]) -> None:
        self.name = name
        self.errors = list(errors)
        self.calls = 0
        self.lock = threading.Lock()

    def complete(self, request: st.ModelRequest, cancel: st.CancelToken) -> st.ModelReply:
        with self.lock:
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
        return st.ModelReply(content=f"done {request.session_id}",
                             usage=st.Usage(input_tokens=60, output_tokens=35))


def payloads(rt: st.Runtime, prefix: str, sid: str | None = None) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=prefix)]


def test_a_retryable_error_without_retry_after_cools_down_by_the_default_and_halves_concurrency(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flaky = Flaky("p", [st.ProviderError("overloaded", reason=Reason.PROVIDER_OVERLOADED, status=529)])
    limits = st.Limits(provider_limits={"p": 4})
    with st.Runtime.open(db_path, providers=[flaky], limits=limits, clock=clock) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t")
        seen.until(lambda: rt.session(sid).state == "queued" and payloads(rt, "FR-EVT-SESS-SCHED-COOLDOWN"))
        (cool,) = payloads(rt, "FR-EVT-SESS-SCHED-COOLDOWN", sid)
        assert (cool["delay"], cool["concurrency"], cool["reason"]) == (1.0, 2, "provider_overloaded")
        clock.advance(1.0)
        done = rt.wait(sid, timeout=WAIT)
        assert payloads(rt, "FR-EVT-SESS-CRASHED", sid) == []

    assert (done.state, flaky.calls) == ("completed", 2)


def test_a_run_whose_provider_keeps_failing_fails_after_max_retries_without_a_crash(
    db_path: Path,
) -> None:
    clock = ManualClock()
    errors = [st.ProviderError("busy", retry_after=2.0, reason=Reason.PROVIDER_RATE_LIMITED,
                               status=429) for _ in range(5)]
    flaky = Flaky("p", errors)
    limits = st.Limits(backpressure=st.BackpressurePolicy(max_retries=2))
    with st.Runtime.open(db_path, providers=[flaky], limits=limits, clock=clock) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t")
        for n in (1, 2):
            seen.until(lambda n=n: len(payloads(rt, "FR-EVT-SESS-SCHED-RETRIED", sid)) == n
                       and rt.session(sid).state == "queued")
            rt.stats()
            clock.advance(2.0)
        done = rt.wait(sid, timeout=WAIT)
        cooldowns = payloads(rt, "FR-EVT-SESS-SCHED-COOLDOWN", sid)
        crashed = payloads(rt, "FR-EVT-SESS-CRASHED", sid)

    assert (done.state, done.reason) == ("failed", "provider_retries_exhausted")
    assert [c["run_failures"] for c in cooldowns] == [1, 2, 3]
    assert crashed == [] and flaky.calls == 3


def _drained(rt: st.Runtime, timeout: float = WAIT) -> bool:
    """True once the scheduler holds no running job: ``wait`` returns on the commit that
    ends a session, and the actor tells the scheduler just after; each ``stats`` is a
    round trip through the scheduler's inbox."""
    deadline = time.monotonic() + timeout
    while rt.stats().running:
        if time.monotonic() > deadline:
            return False
    return True


def test_requests_per_minute_holds_the_next_run_until_the_minute_has_passed(db_path: Path) -> None:
    clock = ManualClock()
    provider = st.ScriptedProvider(lambda t: "ok", name="p")
    limits = st.Limits(rate_limits={"p": st.RateLimit(requests_per_minute=2)})
    with st.Runtime.open(db_path, providers=[provider], limits=limits, clock=clock) as rt:
        first, second = rt.create_session("a"), rt.create_session("b")
        assert rt.wait(first, timeout=WAIT).state == rt.wait(second, timeout=WAIT).state == "completed"
        assert _drained(rt)  # else the THROTTLED event waits for a dispatch (manual clock)
        third = rt.create_session("c")
        rt.stats()
        assert payloads(rt, "FR-EVT-SESS-SCHED-THROTTLED", third) == [{"limit": "requests_per_minute"}]
        assert 60.0 in [round(d, 6) for d in clock.pending()]
        clock.advance(59.9)
        rt.stats()
        assert rt.session(third).state == "queued"
        clock.advance(0.1)
        assert rt.wait(third, timeout=WAIT).state == "completed"


def test_tokens_per_minute_counts_what_calls_used_and_holds_the_next_until_it_fits(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flaky = Flaky("p", [])  # every call uses 95 tokens
    limits = st.Limits(reserve_tokens=10, rate_limits={"p": st.RateLimit(tokens_per_minute=100)})
    with st.Runtime.open(db_path, providers=[flaky], limits=limits, clock=clock) as rt:
        first = rt.create_session("a")
        assert rt.wait(first, timeout=WAIT).usage.tokens == 95
        assert _drained(rt)
        second = rt.create_session("b")
        rt.stats()
        assert payloads(rt, "FR-EVT-SESS-SCHED-THROTTLED", second) == [{"limit": "tokens_per_minute"}]
        clock.advance(60.0)
        assert rt.wait(second, timeout=WAIT).state == "completed"


class Gated:
    """Holds every call until released, counting how many are in flight at once."""

    local = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.entered = threading.Condition(self.lock)
        self.fail_next = 0

    def complete(self, request: st.ModelRequest, cancel: st.CancelToken) -> st.ModelReply:
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                raise st.ProviderError("slow down", retry_after=5.0,
                                       reason=Reason.PROVIDER_RATE_LIMITED, status=429)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.entered.notify_all()
        try:
            if not self.release.wait(WAIT):
                raise AssertionError("never released")
            return st.ModelReply(content="ok")
        finally:
            with self.lock:
                self.in_flight -= 1


def test_after_a_429_fewer_runs_go_to_the_provider_at_once(db_path: Path) -> None:
    clock = ManualClock()
    gated = Gated("p")
    gated.fail_next = 1
    limits = st.Limits(provider_limits={"p": 4})
    with st.Runtime.open(db_path, providers=[gated], limits=limits, clock=clock) as rt:
        seen = Commits(rt)
        first = rt.create_session("a")
        seen.until(lambda: payloads(rt, "FR-EVT-SESS-SCHED-COOLDOWN", first) and
                   rt.session(first).state == "queued")
        others = [rt.create_session(f"s{i}") for i in range(4)]
        rt.stats()
        clock.advance(5.0)
        with gated.entered:
            assert gated.entered.wait_for(lambda: gated.in_flight == 2, WAIT)
        rt.stats()
        throttled = {e["limit"] for s in others for e in payloads(rt, "FR-EVT-SESS-SCHED-THROTTLED", s)}
        gated.release.set()
        done = [rt.wait(s, timeout=WAIT).state for s in [first, *others]]

    assert done == ["completed"] * 5
    assert gated.peak == 2  # the limit of 4, halved by the 429 (it grows back with successes)
    assert "provider_limit" in throttled
