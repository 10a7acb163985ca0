"""Smoke runs of bench/peers.py and bench/scale.py at their smallest sizes: each runs to the
end and prints its table. No timing is asserted; the peers are skipped when their
packages (the ``bench`` extra) are absent. The runs are started together, once per module,
so the file costs about its longest run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
PEERS = ("langchain.agents", "langgraph.checkpoint.sqlite", "agents")

RUNS = {
    "alone": ["peers.py", "--sessions", "2", "--repeat", "1", "--only", "sessiontree"],
    "peers": ["peers.py", "--durable", "--sessions", "2", "--repeat", "1",
              "--only", "langgraph-sync", "agents"],
    "scale": ["scale.py", "--quick", "--sizes", "4", "8", "--latency", "0.02",
              "--recovery-sessions", "20", "--recovery-running", "4", "--memory-parents", "5"],
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module")
def started() -> Iterator[dict[str, subprocess.Popen[str]]]:
    procs = {
        name: subprocess.Popen([sys.executable, str(BENCH / args[0]), *args[1:]], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, args in RUNS.items()
        if name != "peers" or all(_installed(m) for m in PEERS)
    }
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _output(started: dict[str, subprocess.Popen[str]], name: str) -> str:
    out, err = started[name].communicate(timeout=100)
    assert started[name].returncode == 0, err[-2000:]
    return out


def test_peers_sessiontree_alone(started: dict[str, subprocess.Popen[str]]) -> None:
    out = _output(started, "alone")
    assert any(ln.split()[:1] == ["sessiontree"] and "calls/s" not in ln for ln in out.splitlines())
    assert "commits" in out and "event" in out and "message" in out  # the census table


def test_peers_durable_side_by_side(started: dict[str, subprocess.Popen[str]]) -> None:
    for module in PEERS:
        pytest.importorskip(module)
    out = _output(started, "peers")
    rows = [ln.split() for ln in out.splitlines()]
    assert any(r[:1] == ["sessiontree-durable"] for r in rows)  # the base, added by itself
    for peer in ("langgraph-sync", "agents"):
        assert any(r[:1] == [peer] and r[-1].endswith("x") for r in rows), out  # a paired ratio
    assert "checkpoints" in out and "agent_messages" in out


def test_scale_quick(started: dict[str, subprocess.Popen[str]]) -> None:
    out = _output(started, "scale")
    for heading in ("curve:", "latency-bound:", "recovery:", "memory:"):
        assert heading in out
    assert "every session queued: yes" in out
    assert "memory: 10 sessions, 5 waiting" in out
