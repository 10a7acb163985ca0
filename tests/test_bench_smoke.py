"""Smoke runs of bench/peers.py and bench/scale.py at their smallest sizes: each runs to the
end and prints its table. No timing is asserted; the peers are skipped when their
packages (the ``bench`` extra) are absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_peers_sessiontree_alone() -> None:
    out = _run("peers.py", "--sessions", "2", "--repeat", "1", "--only", "sessiontree")
    assert any(ln.split()[:1] == ["sessiontree"] and "calls/s" not in ln for ln in out.splitlines())
    assert "event" in out and "message" in out  # the per-call persistence table, read back


def test_peers_durable_side_by_side() -> None:
    pytest.importorskip("langchain.agents")
    pytest.importorskip("langgraph.checkpoint.sqlite")
    pytest.importorskip("agents")
    out = _run("peers.py", "--durable", "--sessions", "2", "--repeat", "1",
               "--only", "langgraph-sync", "agents")
    rows = [ln.split() for ln in out.splitlines()]
    assert any(r[:1] == ["sessiontree-durable"] for r in rows)  # the base, added by itself
    for peer in ("langgraph-sync", "agents"):
        assert any(r[:1] == [peer] and r[-1].endswith("x") for r in rows), out  # a paired ratio
    assert "checkpoints" in out and "agent_messages" in out


def test_scale_quick() -> None:
    out = _run("scale.py", "--quick", "--sizes", "4", "8", "--latency", "0.02",
               "--recovery-sessions", "20", "--recovery-running", "4", "--memory-parents", "5")
    for heading in ("curve:", "latency-bound:", "recovery:", "memory:"):
        assert heading in out
    assert "every session queued: yes" in out
    assert "memory: 10 sessions, 5 waiting" in out
