"""Unified diffs: parse one (as ``diff -u`` or ``git diff`` writes it) and apply it to
text, in memory. Pure: no file is touched here.

Tolerant where models often slip, strict where a slip would change the wrong lines:

- hunk line counts in ``@@`` headers are not trusted (a hunk runs to the next header);
  its start line is only a hint: the hunk's old lines (context and removals) must
  appear in the file, exactly but for line endings, and the occurrence nearest the
  hint is used;
- ``a/`` and ``b/`` prefixes (git) are dropped; ``/dev/null`` creates or deletes;
- renames, copies, mode changes and binary patches are refused.

A hunk whose old lines are not found, but whose new lines are, counts as already
applied; a patch is *already applied* when every hunk is, so running it again after a
crash changes nothing (apply_patch is idempotent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sessiontree._errors import WorkspaceError

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_UNSUPPORTED = ("rename from", "rename to", "copy from", "copy to", "old mode", "new mode",
                "new file mode 12", "deleted file mode 12", "GIT binary patch", "Binary files")


class PatchError(WorkspaceError):
    """The patch is malformed, or does not apply; the message says where."""


@dataclass
class Hunk:
    old_start: int
    lines: list[tuple[str, str]] = field(default_factory=list)  # (op, text) op in " -+"

    def side(self, ops: str) -> list[str]:
        return [text for op, text in self.lines if op in ops]


@dataclass
class FilePatch:
    old: str | None  # None: the file is created
    new: str | None  # None: the file is deleted
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        path = self.new if self.new is not None else self.old
        assert path is not None
        return path


def _name(raw: str, prefix: str) -> str | None:
    name = raw.split("\t", 1)[0].strip()
    if name == "/dev/null":
        return None
    if name.startswith('"') and name.endswith('"'):
        raise PatchError(f"quoted file names are not supported: {name}")
    return name[len(prefix):] if name.startswith(prefix) else name


def parse(text: str) -> list[FilePatch]:
    """Parse a unified diff; raise :class:`PatchError` if it holds no file or a hunk
    outside a file, or uses what this parser refuses (module docstring)."""
    lines = text.splitlines(keepends=True)
    files: list[FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(_UNSUPPORTED):
            raise PatchError(f"unsupported patch line: {line.strip()[:80]} (renames, modes and "
                             "binary patches are refused: delete and create instead)")
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            both_prefixed = lines[i][4:].startswith("a/") and lines[i + 1][4:].startswith("b/")
            fp = FilePatch(_name(line[4:], "a/" if both_prefixed else ""),
                           _name(lines[i + 1][4:], "b/" if both_prefixed else ""))
            if fp.old is None and fp.new is None:
                raise PatchError("a file patch from /dev/null to /dev/null")
            if fp.old is not None and fp.new is not None and fp.old != fp.new:
                raise PatchError(f"renames are not supported ({fp.old} -> {fp.new})")
            files.append(fp)
            i += 2
            continue
        match = _HUNK.match(line)
        if match:
            if not files:
                raise PatchError("a hunk before any '--- a/...' '+++ b/...' file header")
            hunk = Hunk(int(match.group(1)))
            i += 1
            while i < len(lines):
                body = lines[i]
                if body.startswith("@@") or (body.startswith("--- ") and i + 1 < len(lines)
                                             and lines[i + 1].startswith("+++ ")):
                    break
                if body.startswith("\\"):  # "\ No newline at end of file"
                    if hunk.lines:
                        op, last = hunk.lines[-1]
                        hunk.lines[-1] = (op, last.rstrip("\r\n"))
                elif body[:1] in (" ", "-", "+"):
                    hunk.lines.append((body[0], _ended(body[1:])))
                elif body.strip() == "":
                    hunk.lines.append((" ", "\n"))  # a context line whose space was lost
                else:
                    break
                i += 1
            while hunk.lines and hunk.lines[-1] == (" ", "\n"):
                hunk.lines.pop()  # blank lines closing a hunk: the gap before what follows
            files[-1].hunks.append(hunk)
            continue
        i += 1
    if not files:
        raise PatchError("no file patch found: expected '--- a/path' and '+++ b/path' lines")
    for fp in files:
        if not fp.hunks and fp.new is not None:
            raise PatchError(f"the patch for {fp.path} has no hunk")
    return files


def _ended(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _key(line: str) -> str:
    return line.rstrip("\r\n")


def _find(lines: list[str], block: list[str], hint: int, start: int) -> int | None:
    """The position >= start where ``block`` occurs (ignoring line endings), nearest
    to ``hint``."""
    keys, want = [_key(x) for x in lines], [_key(x) for x in block]
    best: int | None = None
    for pos in range(start, len(lines) - len(block) + 1):
        if keys[pos : pos + len(block)] == want and (best is None or abs(pos - hint) < abs(best - hint)):
            best = pos
    return best


def _apply_hunks(text: str, hunks: list[Hunk], path: str, reverse: bool) -> str | None:
    lines = text.splitlines(keepends=True)
    cursor, offset = 0, 0
    for hunk in hunks:
        old_ops, new_ops = (" +", " -") if reverse else (" -", " +")
        old = hunk.side(old_ops)
        hint = max(0, hunk.old_start - 1 + offset) if hunk.old_start else 0
        if not old:
            pos: int | None = min(max(hint, cursor), len(lines))
        else:
            pos = _find(lines, old, hint, cursor)
        if pos is None:
            return None
        out: list[str] = []
        k = pos
        for op, line in hunk.lines:
            if op == " ":
                out.append(lines[k])  # the file's own line, its ending kept
                k += 1
            elif op in old_ops:
                k += 1
            elif op in new_ops:
                out.append(line)
        lines[pos : pos + len(old)] = out
        cursor = pos + len(out)
        offset += len(out) - len(old)
    for j in range(len(lines) - 1):  # a line that lost its newline before another line
        if not lines[j].endswith("\n"):
            lines[j] += "\n"
    return "".join(lines)


@dataclass(frozen=True)
class Outcome:
    action: str  # modified | created | deleted | already_applied
    content: str | None  # the new text (None: delete, or nothing to write)


def apply_file(fp: FilePatch, current: str | None, *, retry: bool = False) -> Outcome:
    """What ``fp`` does to a file whose text is ``current`` (None: it does not exist).

    ``retry``: the same call ran before (a re-run after a crash); then a file that
    already holds the patch's result is left alone even if the patch would apply again
    (a pure addition would). Raises :class:`PatchError` naming the file and hunk that
    do not apply."""
    path = fp.path
    if fp.old is None:  # create
        wanted = "".join(line for h in fp.hunks for line in h.side(" +"))
        if current is None:
            return Outcome("created", wanted)
        if _key(current) == _key(wanted):
            return Outcome("already_applied", None)
        raise PatchError(f"{path} already exists; the patch creates it", path=path)
    if fp.new is None:  # delete
        if current is None:
            return Outcome("already_applied", None)
        expected = "".join(line for h in fp.hunks for line in h.side(" -"))
        if fp.hunks and _key(current) != _key(expected):
            raise PatchError(f"{path} differs from what the patch deletes", path=path)
        return Outcome("deleted", None)
    if current is None:
        raise PatchError(f"no such file in the workspace: {path}", path=path)
    undone = _apply_hunks(current, fp.hunks, path, reverse=True)
    if retry and undone is not None:
        return Outcome("already_applied", None)
    applied = _apply_hunks(current, fp.hunks, path, reverse=False)
    if applied is not None:
        return Outcome("modified", applied)
    if undone is not None:
        return Outcome("already_applied", None)
    for n, hunk in enumerate(fp.hunks, 1):
        if _apply_hunks(current, [hunk], path, reverse=False) is None:
            first = next((line for op, line in hunk.lines if op in " -"), "").rstrip("\n")
            raise PatchError(f"hunk {n} of {path} does not apply: its old lines (from "
                             f"{first[:60]!r}) are not in the file", path=path, hunk=n)
    raise PatchError(f"the hunks of {path} do not apply together", path=path)
