"""Atomic writes: a writer killed with SIGKILL at any point leaves the old file or the
new one, whole -- never a mix -- and the next write works."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessiontree.workspace import files
from sessiontree.workspace.paths import Root

OLD = b"old content\n" * 10_000
NEW_CHUNK = b"N" * 65_536

WRITER = textwrap.dedent("""
    import sys
    from sessiontree.workspace import files
    from sessiontree.workspace.paths import Root

    root, stage = Root(sys.argv[1]), sys.argv[2]

    def park(at):
        print(at, flush=True)
        sys.stdin.read()  # parked here until the test kills this process

    def chunks():
        for i in range(8):
            if i == 4 and stage == "midway":
                park("midway")
            yield b"N" * 65536

    root.race_hooks.append(lambda at, path: park(at) if at == stage else None)
    with root.resolve("data.bin") as t:
        files.write_atomic(root, t, chunks())
    print("finished", flush=True)
""")


@pytest.mark.parametrize("stage", ["midway", "rename"])
def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path: Path, stage: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "data.bin").write_bytes(OLD)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(ws), stage], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == stage
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    assert (ws / "data.bin").read_bytes() == OLD
    root = Root(ws)
    with root.resolve(".") as t:
        assert [e["name"] for e in files.list_dir(root, t)[0]] == ["data.bin"]  # the temp is hidden
    with root.resolve("data.bin") as t:
        files.write_atomic(root, t, [NEW_CHUNK])
    assert (ws / "data.bin").read_bytes() == NEW_CHUNK


def test_a_writer_that_is_not_killed_replaces_the_file_whole(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "data.bin").write_bytes(OLD)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    done = subprocess.run([sys.executable, str(script), str(ws), "never"], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "finished"
    assert (ws / "data.bin").read_bytes() == NEW_CHUNK * 8
    assert sorted(p.name for p in ws.iterdir()) == ["data.bin"]
