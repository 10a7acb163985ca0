"""Side by side with the peers: one workload on sessiontree, LangGraph and the OpenAI Agents SDK.

    python bench/peers.py [--sessions 200] [--repeat 3] [--concurrency 8] [--durable]
                          [--only SYSTEM ...]

The workload, the same for each system: ``--sessions`` sessions, each a 5-turn tool loop
(model calls 1-4 ask for one read-only ``noop`` tool call, call 5 answers), a fake model
of zero latency (no network), every step persisted by the system's own SQLite store on
the same disk. At most ``--concurrency`` sessions run at once in each system
(sessiontree's default ``max_concurrent_runs`` is 8).

- sessiontree: ``Runtime.open`` (WAL, ``synchronous=NORMAL``; ``durable=True`` is FULL),
  ScriptedProvider.
- LangGraph: ``langchain.agents.create_agent`` (the agent loop LangGraph 1.x recommends;
  ``langgraph.prebuilt.create_react_agent`` is deprecated in its favour) over a fake
  ``BaseChatModel`` that makes tool calls, ``durability="sync"``; ``SqliteSaver`` on a
  thread pool, or ``AsyncSqliteSaver`` under asyncio. Both savers set WAL; SQLite's default
  ``synchronous`` is FULL. The ``-normal`` columns set NORMAL on the saver's connection.
- Agents SDK: ``Runner.run`` with ``SQLiteSession`` and a fake ``Model``, tracing
  disabled. ``SQLiteSession`` sets WAL and leaves FULL; ``-normal`` sets NORMAL.

Each round runs every system once, each in a fresh interpreter, in an order rotated per
round so the machine's drift hits all alike; printed figures are medians over
``--repeat`` rounds, ratios are medians of the per-round ratios (paired). ``--durable``
compares sessiontree ``durable=True`` with the peers at their default (FULL) settings.
Then one census run per system, untimed, counts every statement its SQLite connections
run (commits, writes) and reads the store back (rows per model call in each table, bytes
per model call), so the table says what each system keeps for its figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TURNS = 5

NORMAL_SET = ("sessiontree", "langgraph-sync-normal", "langgraph-sync", "langgraph-async-normal",
              "agents-normal", "agents")
DURABLE_SET = ("sessiontree-durable", "langgraph-sync", "langgraph-async", "agents")

KEEPS = {
    "sessiontree": "messages (hash-chained), tool-call intent+result journal, checkpoint, "
                   "session state, Flight Recorder events (indexed)",
    "langgraph": "a checkpoint of the whole graph state per super-step (blob), pending writes",
    "agents": "conversation items (input, tool calls, outputs, answer) as JSON rows; "
              "no checkpoint, no journal, no events",
}


class Timer:
    """Wall and process CPU time (all threads) over the same span."""

    def start(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


# --- sessiontree ----------------------------------------------------------------------------

def run_sessiontree(db: Path, sessions: int, concurrency: int, timer: Timer, durable: bool = False,
                    latency: float = 0.0, turns: int = TURNS) -> None:
    """The tool loop on sessiontree: ``turns`` model calls a session, all but the last asking
    for ``noop``; ``latency`` seconds a model call (ScriptedProvider)."""
    sys.path.insert(0, str(ROOT))
    from pydantic import BaseModel

    import sessiontree as st

    class NoArgs(BaseModel):
        n: int = 0

    @st.tool("noop", NoArgs, effect="read_only")
    def noop(ctx: st.ToolContext, args: NoArgs) -> str:
        return "ok"

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn < turns - 1:
            return st.reply("", st.call("noop", n=turn.turn))
        return st.reply("done")

    limits = st.Limits(max_concurrent_runs=concurrency)
    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy, latency=latency)], tools=[noop],
                         limits=limits,
                         durable=durable) as rt:
        ids = [rt.create_session("t", capabilities=["tool:noop"], start=False)
               for _ in range(sessions)]
        store: Any = rt._store
        done = threading.Event()
        seen = [0]
        lock = threading.Lock()

        def on_commit(summary: Any) -> None:
            for _, state in summary.states:
                if state in ("completed", "failed", "cancelled"):
                    with lock:
                        seen[0] += 1
                        if seen[0] >= sessions:
                            done.set()

        store.add_listener(on_commit)
        timer.start()
        for sid in ids:
            rt.enqueue(sid)
        if not done.wait(600):
            raise RuntimeError("sessiontree run did not finish")
        timer.stop()
        store.remove_listener(on_commit)
        bad = [s for s in ids if rt.session(s).state != "completed"]
        if bad:
            raise RuntimeError(f"{len(bad)} sessions did not complete")


# --- LangGraph ------------------------------------------------------------------------------

def _langgraph_agent(checkpointer: Any) -> Any:
    from langchain.agents import create_agent
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool

    @tool
    def noop(n: int = 0) -> str:
        """Does nothing."""
        return "ok"

    class FakeToolModel(BaseChatModel):
        """Zero-latency chat model: a tool call for each of the first four turns, then an answer."""

        @property
        def _llm_type(self) -> str:
            return "fake-tool-model"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                      **kwargs: Any) -> ChatResult:
            turn = sum(isinstance(m, ToolMessage) for m in messages)
            if turn < TURNS - 1:
                msg = AIMessage(content="", tool_calls=[
                    {"name": "noop", "args": {"n": turn}, "id": uuid.uuid4().hex, "type": "tool_call"}])
            else:
                msg = AIMessage(content="done")
            return ChatResult(generations=[ChatGeneration(message=msg)])

    return create_agent(FakeToolModel(), tools=[noop], checkpointer=checkpointer)


def _check_langgraph(results: list[Any]) -> None:
    bad = [r for r in results if r["messages"][-1].content != "done" or len(r["messages"]) != 2 * TURNS]
    if bad:
        raise RuntimeError(f"{len(bad)} LangGraph sessions did not run the 5-turn loop")


def run_langgraph_sync(db: Path, sessions: int, concurrency: int, timer: Timer, normal: bool) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()  # sets journal_mode=WAL
    if normal:
        conn.execute("PRAGMA synchronous=NORMAL")
    agent = _langgraph_agent(saver)

    def one(i: int) -> Any:
        return agent.invoke({"messages": [("user", "t")]},
                            config={"configurable": {"thread_id": f"s{i}"}}, durability="sync")

    timer.start()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(sessions)))
    timer.stop()
    conn.close()
    _check_langgraph(results)


def run_langgraph_async(db: Path, sessions: int, concurrency: int, timer: Timer, normal: bool) -> None:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async def main() -> list[Any]:
        async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
            await saver.setup()  # sets journal_mode=WAL
            if normal:
                await saver.conn.execute("PRAGMA synchronous=NORMAL")
            agent = _langgraph_agent(saver)
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> Any:
                async with gate:
                    return await agent.ainvoke({"messages": [("user", "t")]},
                                               config={"configurable": {"thread_id": f"s{i}"}},
                                               durability="sync")

            timer.start()
            results = await asyncio.gather(*(one(i) for i in range(sessions)))
            timer.stop()
            return list(results)

    _check_langgraph(asyncio.run(main()))


# --- OpenAI Agents SDK ----------------------------------------------------------------------

def run_agents(db: Path, sessions: int, concurrency: int, timer: Timer, normal: bool) -> None:
    from agents import Agent, Runner, SQLiteSession, Usage, function_tool, set_tracing_disabled
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    set_tracing_disabled(True)  # no exporter, no network

    @function_tool
    def noop(n: int = 0) -> str:
        """Does nothing."""
        return "ok"

    class FakeModel(Model):
        async def get_response(self, system_instructions: Any, input: Any, *args: Any,
                               **kwargs: Any) -> ModelResponse:
            items = input if isinstance(input, list) else []
            turn = sum(1 for it in items if isinstance(it, dict) and it.get("type") == "function_call_output")
            if turn < TURNS - 1:
                out: Any = ResponseFunctionToolCall(type="function_call", call_id=uuid.uuid4().hex,
                                                    name="noop", arguments=json.dumps({"n": turn}),
                                                    id=uuid.uuid4().hex, status="completed")
            else:
                out = ResponseOutputMessage(
                    type="message", id=uuid.uuid4().hex, role="assistant", status="completed",
                    content=[ResponseOutputText(type="output_text", text="done", annotations=[])])
            return ModelResponse(output=[out], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    class NormalSession(SQLiteSession):
        @staticmethod
        def _configure_connection(conn: sqlite3.Connection) -> None:
            SQLiteSession._configure_connection(conn)
            conn.execute("PRAGMA synchronous=NORMAL")

    session_type = NormalSession if normal else SQLiteSession
    agent = Agent(name="bench", instructions="t", model=FakeModel(), tools=[noop])

    async def main() -> list[Any]:
        gate = asyncio.Semaphore(concurrency)
        stores = [session_type(f"s{i}", db) for i in range(sessions)]

        async def one(i: int) -> Any:
            async with gate:
                return await Runner.run(agent, "t", session=stores[i], max_turns=TURNS + 2)

        timer.start()
        results = await asyncio.gather(*(one(i) for i in range(sessions)))
        timer.stop()
        for s in stores:
            s.close()
        return list(results)

    bad = [r for r in asyncio.run(main()) if r.final_output != "done"]
    if bad:
        raise RuntimeError(f"{len(bad)} Agents SDK sessions did not answer")


# --- one run, read back ---------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Path, int, int, Timer], None]] = {
    "sessiontree": lambda d, n, c, t: run_sessiontree(d, n, c, t, durable=False),
    "sessiontree-durable": lambda d, n, c, t: run_sessiontree(d, n, c, t, durable=True),
    "langgraph-sync": lambda d, n, c, t: run_langgraph_sync(d, n, c, t, normal=False),
    "langgraph-sync-normal": lambda d, n, c, t: run_langgraph_sync(d, n, c, t, normal=True),
    "langgraph-async": lambda d, n, c, t: run_langgraph_async(d, n, c, t, normal=False),
    "langgraph-async-normal": lambda d, n, c, t: run_langgraph_async(d, n, c, t, normal=True),
    "agents": lambda d, n, c, t: run_agents(d, n, c, t, normal=False),
    "agents-normal": lambda d, n, c, t: run_agents(d, n, c, t, normal=True),
}


def persisted(db: Path, calls: int) -> dict[str, Any]:
    """Rows per model call in each non-empty table, and bytes per model call on disk."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tables = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] / calls for t in tables}
    indexes = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE type='index'").fetchone()[0]
    con.close()
    return {"rows": {t: round(v, 2) for t, v in rows.items() if v >= 0.01},
            "bytes": db.stat().st_size / calls, "indexes": indexes}


class Census:
    """Counts the statements every SQLite connection opened in this process runs (a trace
    callback set by a wrapped ``sqlite3.connect``): commits and writes. Used in a census
    run of its own, never in a timed one."""

    def __init__(self) -> None:
        self.commits = self.writes = 0
        self.lock = threading.Lock()
        connect = sqlite3.connect

        def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = connect(*args, **kwargs)
            conn.set_trace_callback(self.statement)
            return conn

        sqlite3.connect = traced  # type: ignore[assignment]

    def statement(self, sql: str) -> None:
        head = sql.lstrip()[:7].upper()
        with self.lock:
            if head.startswith("COMMIT") or head.startswith("END"):
                self.commits += 1
            elif head.startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
                self.writes += 1


def one_round(system: str, sessions: int, concurrency: int, census: bool = False) -> dict[str, Any]:
    counter = Census() if census else None
    with tempfile.TemporaryDirectory(prefix="sessiontree-peers-", dir=os.environ.get("BENCH_DIR")) as tmp:
        db = Path(tmp) / "bench.db"
        timer = Timer()
        RUNNERS[system](db, sessions, concurrency, timer)
        calls = sessions * TURNS
        if counter is not None:
            return {"commits": counter.commits / calls, "writes": counter.writes / calls,
                    **persisted(db, calls)}
        return {"rate": calls / timer.wall, "cpu_ms": 1000 * timer.cpu / calls}


def _round_in(system: str, sessions: int, concurrency: int, census: bool = False) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", system, "--sessions", str(sessions),
         "--concurrency", str(concurrency), *(["--census"] if census else [])],
        check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.splitlines()[-1]))


def available(system: str) -> bool:
    import importlib.util
    need = {"langgraph": ("langchain", "langgraph.checkpoint.sqlite"), "agents": ("agents",)}
    family = system.split("-")[0]
    return all(importlib.util.find_spec(m) is not None for m in need.get(family, ()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sessiontree beside LangGraph and the Agents SDK")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--durable", action="store_true",
                        help="sessiontree durable=True against the peers' default (FULL) settings")
    parser.add_argument("--only", nargs="+", choices=sorted(RUNNERS), help="systems to run")
    parser.add_argument("--one", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--census", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_round(args.one, args.sessions, args.concurrency, args.census)))
        return 0
    chosen = list(args.only or (DURABLE_SET if args.durable else NORMAL_SET))
    skipped = [s for s in chosen if not available(s)]
    systems = [s for s in chosen if s not in skipped]
    base = "sessiontree-durable" if args.durable else "sessiontree"
    if base not in systems:
        systems.insert(0, base)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    for r in range(args.repeat):
        k = r % len(systems)
        for system in systems[k:] + systems[:k]:  # rotated each round
            runs[system].append(_round_in(system, args.sessions, args.concurrency))
    census = {s: _round_in(s, args.sessions, args.concurrency, census=True) for s in systems}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    print(f"peers: {args.sessions} sessions x {TURNS}-turn tool loop, zero model latency, "
          f"concurrency {args.concurrency}, median of {args.repeat} rounds "
          f"(sessiontree {commit}, python {sys.version.split()[0]})")
    if skipped:
        print(f"  skipped (packages absent; pip install -e '.[bench]'): {', '.join(skipped)}")
    print(f"  {'system':24s} {'calls/s':>8s} {'CPU/call':>9s} {base + ' / it':>24s}")
    for s in systems:
        rate = statistics.median(x["rate"] for x in runs[s])
        cpu = statistics.median(x["cpu_ms"] for x in runs[s])
        paired = [a["rate"] / b["rate"] for a, b in zip(runs[base], runs[s], strict=True)]
        ratio = "" if s == base else f"{statistics.median(paired):.2f}x"
        print(f"  {s:24s} {rate:8.0f} {cpu:7.2f}ms {ratio:>24s}")
    print("  what each persists per model call (a census run of its own, untimed; the whole run, "
          "creating the sessions included): commits, write statements (INSERT/UPDATE/DELETE), "
          "bytes of the store file, indexes, rows kept by table")
    for s in systems:
        c = census[s]
        rows = ", ".join(f"{t} {v:g}" for t, v in sorted(c["rows"].items()))
        print(f"  {s:24s} {c['commits']:5.2f} commits {c['writes']:5.1f} writes {c['bytes']:6.0f} B "
              f"{c['indexes']:2d} idx  {rows}")
    for family, text in KEEPS.items():
        if any(s.startswith(family) for s in systems):
            print(f"  {family}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
