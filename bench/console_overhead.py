"""What an attached steering console costs the host, and how soon a command is applied.

    python bench/console_overhead.py [--sessions 200] [--turns 5] [--repeat 5] [--refresh 0.5]

Dispatch: N sessions x T model_runs (each run but the last calls a read-only tool), at
zero provider latency, measured as model_runs/s of the host, alternately without and
with a console attached: ``sessiontree console``'s app (``console.app.SteeringConsole``)
running headless in another process, redrawing every ``--refresh`` seconds from its own
connection. Medians over ``--repeat`` rounds of each, and their ratio.

Also printed: the console process's CPU seconds over the workload against the host's,
and the load average (on a shared machine the rounds vary by more than the effect).
Controls: ``BENCH_IDLE_CHILD=1`` attaches a process that only waits (the noise floor),
``BENCH_READER_ONLY=1`` one that only reads (``console.snapshot.Reader``, no drawing);
``BENCH_PROFILE=FILE`` writes the console's cProfile there.

Command delay: with a live host, operator commands (a pause and a resume of an idle
session, written from another connection, which then rings the host's doorbell as the
command line does) from written to settled, idle and while the host dispatches the
workload above: median and max.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import sessiontree as st  # noqa: E402 - from this checkout
from sessiontree.persistence import commands, doorbell, open_store  # noqa: E402


class NoArgs(BaseModel):
    n: int = 0


@st.tool("noop", NoArgs, effect="read_only")
def noop(ctx: st.ToolContext, args: NoArgs) -> str:
    return "ok"


def provider(turns: int) -> st.ScriptedProvider:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn < turns - 1:
            return st.reply("", st.call("noop", n=turn.turn))
        return st.reply("done")

    return st.ScriptedProvider(policy)


def run_workload(rt: st.Runtime, sessions: int) -> float:
    """Seconds for ``sessions`` sessions to complete, from the first create."""
    done = threading.Event()
    left = [sessions]
    lock = threading.Lock()

    def heard(summary: Any) -> None:
        ended = sum(1 for _, s in summary.states if s in ("completed", "failed", "cancelled"))
        if ended:
            with lock:
                left[0] -= ended
                if left[0] <= 0:
                    done.set()

    rt._store.add_listener(heard)
    try:
        start = time.perf_counter()
        for i in range(sessions):
            rt.create_session(f"s{i}", capabilities=["noop"])
        assert done.wait(600), "workload did not finish"
        return time.perf_counter() - start
    finally:
        rt._store.remove_listener(heard)


def console_child(db: str, refresh: float) -> None:
    """Run the console headless on ``db`` until stdin closes (``--console-child``)."""
    from sessiontree.console.app import SteeringConsole

    if os.environ.get("BENCH_IDLE_CHILD"):  # control: a process that only waits
        print(f"ready {time.process_time()}", flush=True)
        sys.stdin.read()
        print(time.process_time(), flush=True)
        return
    if os.environ.get("BENCH_READER_ONLY"):  # the store reads alone, no drawing
        from sessiontree.console.snapshot import Reader

        store = open_store(db, create=False)
        reader = Reader(store)
        stop = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        print(f"ready {time.process_time()}", flush=True)
        spent, looks = 0.0, 0
        import cProfile
        prof = cProfile.Profile()
        while not stop.wait(refresh):
            t0 = time.perf_counter()
            prof.enable()
            reader.read()
            prof.disable()
            spent, looks = spent + time.perf_counter() - t0, looks + 1
        if os.environ.get("BENCH_PROFILE"):
            prof.dump_stats(os.environ["BENCH_PROFILE"])
        print(time.process_time(), flush=True)
        print(f"looks {looks} mean {1000 * spent / max(looks, 1):.1f} ms", file=sys.stderr)
        return

    async def main() -> None:
        app = SteeringConsole(db, refresh=refresh)
        prof = None
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            prof = cProfile.Profile()
        async with app.run_test(size=(200, 60)) as pilot:
            await pilot.pause()
            print(f"ready {time.process_time()}", flush=True)
            if prof is not None:
                prof.enable()
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            await pilot.pause()
            if prof is not None:
                prof.disable()
                prof.dump_stats(os.environ["BENCH_PROFILE"])
            print(time.process_time(), flush=True)

    asyncio.run(main())


def attach(db: Path, refresh: float) -> tuple[subprocess.Popen[str], float]:
    """Start a console on ``db``; return it and its CPU seconds once it has drawn."""
    proc = subprocess.Popen([sys.executable, __file__, "--console-child", str(db),
                             "--refresh", str(refresh)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    word, cpu = proc.stdout.readline().split()
    assert word == "ready"
    return proc, float(cpu)


def detach(proc: subprocess.Popen[str]) -> float:
    """Stop the console; return its CPU seconds then."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    cpu = float(proc.stdout.readline())
    proc.wait(30)
    return cpu


def one_round(directory: Path, name: str, sessions: int, turns: int,
              refresh: float | None) -> tuple[float, float, float]:
    """model_runs/s, the host's CPU seconds and the console's over the workload."""
    db = directory / f"{name}.db"
    with st.Runtime.open(db, providers=[provider(turns)], tools=[noop],
                         limits=st.Limits(default_budget=st.Budget(model_runs=turns + 1))) as rt:
        proc, child_before = attach(db, refresh) if refresh is not None else (None, 0.0)
        host_before = time.process_time()
        try:
            seconds = run_workload(rt, sessions)
            host = time.process_time() - host_before
        finally:
            child = detach(proc) - child_before if proc is not None else 0.0
    return sessions * turns / seconds, host, child


def command_delays(directory: Path, count: int, busy: int, turns: int) -> tuple[list[float], list[float]]:
    """Written-to-settled seconds of ``count`` commands on an idle host, then on a busy one."""
    db = directory / "delay.db"
    out: tuple[list[float], list[float]] = ([], [])
    with st.Runtime.open(db, providers=[provider(turns)], tools=[noop]) as rt:
        target = rt.create_session("idle", start=False)
        other = open_store(db, create=False)
        try:
            for phase, delays in enumerate(out):
                worker = None
                if phase == 1:
                    worker = threading.Thread(target=run_workload, args=(rt, busy))
                    worker.start()
                for i in range(count):
                    cmd = commands.write(other, "pause" if i % 2 == 0 else "resume", target)
                    assert doorbell.ring(str(db), cmd.id, 30) is True  # as the CLI waits
                    now = commands.get(other, cmd.id)
                    assert now.settled_at is not None
                    delays.append(now.settled_at - now.created_at)
                if worker is not None:
                    worker.join()
        finally:
            other.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--refresh", type=float, default=0.5)
    parser.add_argument("--commands", type=int, default=40)
    parser.add_argument("--console-child", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.console_child:
        console_child(args.console_child, args.refresh)
        return 0
    without: list[float] = []
    with_console: list[float] = []
    shares: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for r in range(args.repeat):  # alternating, so the machine's noise hits both alike
            without.append(one_round(directory, f"plain{r}", args.sessions, args.turns, None)[0])
            rate, host, console = one_round(directory, f"console{r}", args.sessions, args.turns,
                                            args.refresh)
            with_console.append(rate)
            shares.append(console / host)
        idle, busy = command_delays(directory, args.commands, args.sessions, args.turns)
    a, b = statistics.median(without), statistics.median(with_console)
    print(f"dispatch, {args.sessions} sessions x {args.turns} model_runs, median of {args.repeat}:")
    print(f"  no console          {a:8.0f} model_runs/s")
    print(f"  console attached    {b:8.0f} model_runs/s  (refresh {args.refresh:g} s)")
    print(f"  slowdown            {100 * (1 - b / a):8.1f} %")
    print(f"  console CPU         {100 * statistics.median(shares):8.1f} % of the host's "
          "(CPU seconds over the workload)")
    print(f"  load average        {os.getloadavg()[0]:8.2f} ({os.cpu_count()} CPUs)")
    for name, delays in (("idle host", idle), ("busy host", busy)):
        print(f"command delay, {name}: median {1000 * statistics.median(delays):.0f} ms, "
              f"max {1000 * max(delays):.0f} ms ({len(delays)} commands)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
