"""The dispatch benchmark runs and prints its figures (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "dispatch.py"


@pytest.mark.timeout(120)
def test_the_dispatch_benchmark_prints_every_figure() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--repeat", "1", "--sessions", "4"],
                         check=True, capture_output=True, text=True, timeout=110).stdout
    for label in ("single-turn sessions", "5-turn tool loop", "children spawned+announced/s",
                  "raw single-row SQLite commits/s", "target >= 1000 model_runs/s"):
        assert label in out
