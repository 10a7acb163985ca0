"""A host in a process of its own, for the control-channel and console tests.

Run as ``python tests/control_host.py DB``; it reads one command a line on stdin and
answers one JSON line on stdout:

- ``tree TAG N``: a root that spawns N kids (tasks ``TAG 0`` ...) and waits for them;
  answers ``{"root": id, "kids": [ids]}`` once the root waits and every kid is inside
  its first model call, which blocks until released.
- ``release TASK``: let that kid's first call return (its second turn then answers).
- ``stats``: the scheduler's ``running`` and ``queued``.
- ``quit``: release every gate, close the runtime, exit.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import sessiontree as st
from sessiontree.persistence import commands
from sessiontree.testing import Commits, scheduler_idle

WAIT = 30.0


class Gates:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.release: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}

    def get(self, table: dict[str, threading.Event], key: str) -> threading.Event:
        with self.lock:
            return table.setdefault(key, threading.Event())

    def open_all(self) -> None:
        with self.lock:
            for event in self.release.values():
                event.set()


def main(db: str) -> int:
    gates = Gates()

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                tag, n = turn.task.split()
                return st.reply("", *[st.call("spawn_session", role="kid", task=f"{tag} {i}")
                                      for i in range(int(n))])
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return "root done"
        if turn.turn == 0:
            gates.get(gates.entered, turn.task).set()
            gates.get(gates.release, turn.task).wait(WAIT)
            # a second turn: this call is denied (no capability), the model answers it
            return st.reply("", st.call("spawn_session", role="x", task="y"))
        return f"kid {turn.task} done"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)]) as rt:
        commits = Commits(rt)  # re-checks a fact after every commit
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "tree":
                tag, n = words[1], int(words[2])
                root = rt.create_session(f"{tag} {n}", capabilities=["session.spawn"])
                rt.wait_state(root, "waiting", timeout=WAIT)
                for i in range(n):
                    gates.get(gates.entered, f"{tag} {i}").wait(WAIT)
                kids = [c.id for c in rt.children(root)]
                print(json.dumps({"root": root, "kids": kids}), flush=True)
            elif words[0] == "release":
                gates.get(gates.release, " ".join(words[1:])).set()
                print(json.dumps({"ok": True}), flush=True)
            elif words[0] == "await":  # await SESSION STATE: until it is in STATE
                sid, wanted = words[1], words[2]
                commits.until(lambda s=sid, w=wanted: rt.session(s).state == w, timeout=WAIT)
                print(json.dumps({"state": wanted}), flush=True)
            elif words[0] == "settled":  # settled COMMAND: until the host settled it
                cid = words[1]
                commits.until(lambda c=cid: commands.get(rt._store, c).state != "pending",
                              timeout=WAIT)
                print(json.dumps({"settled": cid}), flush=True)
            elif words[0] == "idle":
                scheduler_idle(rt, timeout=WAIT)
                print(json.dumps({"idle": True}), flush=True)
            elif words[0] == "stats":
                s = rt.stats()
                print(json.dumps({"running": s.running, "queued": s.queued}), flush=True)
            elif words[0] == "quit":
                break
        gates.open_all()
    print(json.dumps({"closed": True}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
