"""examples/parallel_edit.py runs as documented, in both modes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "parallel_edit.py"
FILES = ["LICENSE", "README.md", "docs/api.md", "src/parser.py", "tests/test_parser.py"]
LINES = ("  | - fix the parser on empty input", "  | - document the API")


def run(tmp_path: Path, mode: str) -> list[str]:
    done = subprocess.run([sys.executable, str(EXAMPLE), "--mode", mode, "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout.splitlines()


def tree(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("final tree"))
    end = lines.index("README.md:")
    return [line.strip() for line in lines[start + 1 : end]]


@pytest.mark.timeout(120)
def test_worktree_mode_merges_cleanly_reports_one_conflict_and_the_root_resolves_it(
    tmp_path: Path,
) -> None:
    lines = run(tmp_path, "worktree")
    merges = [line for line in lines if line.startswith(("merged", "merge conflict"))]
    assert [re.sub(r": [0-9a-f]{10}$", "", m) for m in merges] == [
        "merged parser-fix (clean)",
        "merge conflict reported to root: api-docs in README.md",
        "merged license (clean)",
        "merged tests (clean)",
        "merged api-docs (resolved README.md)",
    ]
    assert tree(lines) == FILES
    assert lines[-2:] == list(LINES)  # both changelog lines kept
    assert any(line.startswith("root: completed") for line in lines)


@pytest.mark.timeout(120)
def test_locked_mode_refuses_the_second_writer_at_write_time(tmp_path: Path) -> None:
    lines = run(tmp_path, "locked")
    [refused] = [line for line in lines if line.startswith("refused at write time")]
    pair = ("api-docs", "parser-fix")
    writer, holder = pair if "api-docs writing" in refused else pair[::-1]
    assert re.fullmatch(rf"refused at write time: {writer} writing README\.md: leased for write by "
                        rf"ses_[0-9a-f]{{20}} \({holder}\)", refused)
    assert tree(lines) == FILES
    kept = LINES[0] if holder == "parser-fix" else LINES[1]
    assert lines[-1] == kept and LINES[0 if kept == LINES[1] else 1] not in lines
