"""A host that talks to one session over three sends, then ends it.

A session created with ``keep_open=True`` answers, then waits ``idle`` (no thread, no
job) for the next message; ``Runtime.send`` queues a turn that answers it, and
``Runtime.wait`` returns when the session is idle again, its ``summary`` the answer.
``Runtime.close_session`` ends it ``completed``. Run it::

    python examples/multi_turn.py [--db PATH]

The model here is a stand-in (``ScriptedProvider``) that keeps a shopping list from the
whole conversation it is sent each turn; any provider gets the same history.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sessiontree as st


def list_keeper(turn: st.ScriptTurn) -> str:
    """Answer the latest message from everything said so far."""
    said = [m.content for m in turn.messages if m.role == "user"]
    items = [text.removeprefix("add ") for text in said if text.startswith("add ")]
    latest = said[-1]
    if latest.startswith("add "):
        return f"added {items[-1]}; {len(items)} on the list"
    if latest == "list":
        return "the list: " + ", ".join(items)
    return "ready: say 'add ITEM' or 'list'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the store (default: a temporary file)")
    args = parser.parse_args(argv)
    db = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "conversation.db"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(list_keeper)]) as rt:
        sid = rt.create_session("start a shopping list", keep_open=True,
                                budget=st.Budget(model_runs=10))
        print(rt.wait(sid, timeout=30).summary)
        for text in ("add apples", "add bread", "list"):
            rt.send(sid, text)
            answer = rt.wait(sid, timeout=30)  # idle again: the answer is its summary
            print(f"> {text}\n{answer.summary}")
        rt.close_session(sid)
        done = rt.session(sid)
        print(f"{done.state} ({done.reason}) after {done.usage.model_runs} model runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
