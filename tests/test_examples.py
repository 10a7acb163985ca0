"""The examples run as written (in a fresh interpreter, as a user would run them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.timeout(60)
def test_multi_turn_example_talks_to_one_session_over_three_sends_then_ends_it(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "multi_turn.py"), "--db", str(tmp_path / "c.db")],
        capture_output=True, text=True, timeout=50, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ready: say 'add ITEM' or 'list'",
        "> add apples", "added apples; 1 on the list",
        "> add bread", "added bread; 2 on the list",
        "> list", "the list: apples, bread",
        "completed (closed) after 4 model runs",
    ]
