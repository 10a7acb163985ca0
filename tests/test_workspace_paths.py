"""Path safety: every hostile path is refused, naming the path; nothing outside the
workspace is read or changed; symlinks inside it still work."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sessiontree as st
from sessiontree._errors import WorkspaceError
from sessiontree.workspace import files
from sessiontree.workspace.paths import PathRefused, Root, check_relative, shown

SECRET = "outside secret\n"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[tuple[Root, Path]]:
    """A workspace with hostile entries, and a secret file outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    (root / "ok.txt").write_text("fine\n")
    (root / "sub" / "inner.txt").write_text("inner\n")
    (root / "etc_link").symlink_to("/etc")
    (root / "mid").symlink_to(outside)  # a middle component leading outside
    (root / "sub" / "climb").symlink_to("../../outside")  # relative, climbs out
    (root / "alias.txt").symlink_to("sub/inner.txt")  # stays inside: allowed
    (root / "loop_a").symlink_to("loop_b")
    (root / "loop_b").symlink_to("loop_a")
    os.link(outside / "secret.txt", root / "hard.txt")
    os.mkfifo(root / "fifo")
    yield Root(root), outside


def read(root: Root, path: str) -> str:
    with root.resolve(path) as t:
        return files.read_bytes(root, t).decode()


def write(root: Root, path: str, text: str = "pwned\n") -> str:
    with root.resolve(path) as t:
        return files.write_atomic(root, t, [text.encode()]).path


HOSTILE = [
    ("/etc/passwd", "absolute"),
    ("../outside/secret.txt", "climbs out"),
    ("sub/../../outside/secret.txt", "climbs out"),
    ("a/../../b", "climbs out"),
    ("etc_link/passwd", "points outside"),
    ("mid/secret.txt", "points outside"),
    ("sub/climb/secret.txt", "leads outside"),
    ("loop_a", "symlinks"),
    ("fifo", "fifo"),
    ("x\x00y", "NUL"),
    ("x\ny", "control character"),
    ("bad\udc80name", "Unicode"),
    ("a/" * 2100 + "f", "longer than"),
    ("n" * 256, "longer than 255"),
    (".git/config", ".git"),
    (".GIT/config", ".git"),
    ("sub/.git/hooks/pre-commit", ".git"),
    (".git", ".git"),
]


@pytest.mark.parametrize(("path", "why"), HOSTILE, ids=[repr(p)[:40] for p, _ in HOSTILE])
def test_a_hostile_path_is_refused_for_reads_and_writes_naming_it(
    ws: tuple[Root, Path], path: str, why: str,
) -> None:
    root, outside = ws
    for op in (read, write):
        with pytest.raises(PathRefused) as refused:
            op(root, path)
        assert why in str(refused.value)
        assert refused.value.path == shown(path) and shown(path)[:40] in str(refused.value)
        assert refused.value.reason == st.Reason.PATH_REFUSED
    assert (outside / "secret.txt").read_text() == SECRET
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_a_hardlink_is_refused_for_writes_and_deletes_and_the_outside_file_is_untouched(
    ws: tuple[Root, Path],
) -> None:
    root, outside = ws
    with pytest.raises(PathRefused, match="hard links"):
        write(root, "hard.txt")
    with pytest.raises(PathRefused, match="hard links"), root.resolve("hard.txt", follow=False) as t:
        files.delete(t)
    assert (outside / "secret.txt").read_text() == SECRET


def test_a_fifo_is_refused_without_blocking(ws: tuple[Root, Path]) -> None:
    root, _ = ws
    with pytest.raises(PathRefused, match="fifo"):
        read(root, "fifo")  # an open of a FIFO would block forever: it is never opened


def test_a_socket_and_a_device_are_refused(ws: tuple[Root, Path], tmp_path: Path) -> None:
    root, _ = ws
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(Path(root.path) / "sock"))
        with pytest.raises(PathRefused, match="socket"):
            read(root, "sock")
    finally:
        sock.close()
    try:
        os.mknod(Path(root.path) / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot make a device node here")
    with pytest.raises(PathRefused, match="device"):
        read(root, "null")
    with pytest.raises(PathRefused, match="device"):
        write(root, "null")


def swap_in(where: str, stage: str, swap: Callable[[], None]) -> Callable[[str, str], None]:
    done: list[bool] = []

    def hook(at: str, path: str) -> None:
        if at == stage and path.startswith(where) and not done:
            done.append(True)
            swap()

    return hook


def test_a_symlink_swapped_in_for_the_file_after_the_check_cannot_escape(
    ws: tuple[Root, Path],
) -> None:
    root, outside = ws
    target = Path(root.path) / "ok.txt"

    def swap() -> None:
        target.unlink()
        target.symlink_to(outside / "secret.txt")

    root.race_hooks.append(swap_in("ok.txt", "open", swap))
    with pytest.raises(PathRefused, match="changed while it was opened"):
        read(root, "ok.txt")


def test_a_symlink_swapped_in_for_a_directory_after_the_check_cannot_escape(
    ws: tuple[Root, Path],
) -> None:
    root, outside = ws
    sub = Path(root.path) / "sub"

    def swap() -> None:
        sub.rename(Path(root.path) / "sub.old")
        sub.symlink_to(outside)

    root.race_hooks.append(swap_in("", "dir", swap))
    with pytest.raises(PathRefused, match="changed while the path was resolved"):
        write(root, "sub/secret.txt")
    assert (outside / "secret.txt").read_text() == SECRET


def test_a_symlink_swapped_in_just_before_the_rename_is_replaced_not_followed(
    ws: tuple[Root, Path],
) -> None:
    root, outside = ws
    target = Path(root.path) / "ok.txt"

    def swap() -> None:
        target.unlink()
        target.symlink_to(outside / "secret.txt")

    root.race_hooks.append(swap_in("ok.txt", "rename", swap))
    write(root, "ok.txt", "mine\n")
    assert (outside / "secret.txt").read_text() == SECRET
    assert not target.is_symlink() and target.read_text() == "mine\n"


def test_symlinks_that_stay_inside_are_followed_and_leases_see_the_real_path(
    ws: tuple[Root, Path],
) -> None:
    root, _ = ws
    assert read(root, "alias.txt") == "inner\n"
    assert write(root, "alias.txt", "changed\n") == "sub/inner.txt"
    assert (Path(root.path) / "sub" / "inner.txt").read_text() == "changed\n"
    assert (Path(root.path) / "alias.txt").is_symlink()
    assert read(root, "sub/../ok.txt") == "fine\n"


def test_a_write_creates_missing_directories_and_leaves_no_temporary_file(ws: tuple[Root, Path]) -> None:
    root, _ = ws
    assert write(root, "new/deep/file.txt", "x\n") == "new/deep/file.txt"
    made = Path(root.path) / "new" / "deep"
    assert [p.name for p in made.iterdir()] == ["file.txt"]
    with root.resolve("new") as t:
        entries, cut = files.list_dir(root, t)
    assert entries == [{"name": "deep", "type": "dir"}] and not cut


def test_list_dir_hides_git_and_shows_kinds(ws: tuple[Root, Path]) -> None:
    root, _ = ws
    (Path(root.path) / ".git").mkdir()
    with root.resolve(".") as t:
        entries, _ = files.list_dir(root, t)
    kinds = {e["name"]: e["type"] for e in entries}
    assert ".git" not in kinds
    assert kinds["fifo"] == "fifo" and kinds["etc_link"] == "symlink" and kinds["sub"] == "dir"


def test_delete_refuses_a_symlink_and_removes_a_regular_file(ws: tuple[Root, Path]) -> None:
    root, _ = ws
    with pytest.raises(PathRefused, match="symlink"), root.resolve("alias.txt", follow=False) as t:
        files.delete(t)
    with root.resolve("ok.txt", follow=False) as t:
        files.delete(t)
    assert not (Path(root.path) / "ok.txt").exists()
    with pytest.raises(WorkspaceError, match="no such file"), root.resolve("ok.txt", follow=False) as t:
        files.delete(t)


@pytest.mark.parametrize(("raw", "norm"), [("./a//b/", "a/b"), ("a/./b/../c", "a/c"), (".", "."),
                                           ("a/..", ".")])
def test_relative_paths_are_normalized(raw: str, norm: str) -> None:
    assert check_relative(raw) == norm


def test_tool_context_workspace_path_shares_the_same_path_safety(ws: tuple[Root, Path]) -> None:
    root, _ = ws
    ctx = st.ToolContext(session_id="ses_1", call_id="tc_1", idempotency_key="k", attempt=1,
                         role="r", depth=0, workspace=Path(root.path), cancel=st.CancelToken())
    assert ctx.workspace_path("alias.txt") == Path(root.path) / "sub" / "inner.txt"
    for path in ("etc_link/passwd", "x\x00y", "../x", ".git/config"):
        with pytest.raises(st.ToolError, match="path refused"):
            ctx.workspace_path(path)
