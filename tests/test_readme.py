"""The README's embedding example runs as written, so it never rots."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _example(marker: str = "embed-example") -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(
        rf"<!-- {marker}:start -->\s*```python\n(.*?)```\s*<!-- {marker}:end -->", text, re.S
    )
    assert match, f"README lost its {marker} markers"
    return match.group(1)


@pytest.mark.timeout(60)
def test_readme_embedding_example_runs_and_prints_the_roots_answer(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_example(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done: finished part 0, finished part 1, finished part 2"


@pytest.mark.timeout(60)
def test_readme_custom_provider_example_runs_against_the_documented_protocol(tmp_path: Path) -> None:
    script = tmp_path / "provider.py"
    script.write_text(_example("provider-example"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "the tool said HELLO", "['user', 'assistant', 'tool', 'assistant']"]


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
