"""Parallel edits of one git repository: a root and four children, two of whom touch the
same lines.

The repository (made fresh in ``--dir``) holds a small library with a changelog in
README.md. The root spawns four children; each writes its own file, and two of them
(``parser-fix`` and ``api-docs``) also add a line at the same place of the changelog.

``--mode worktree`` (default)
    Every session works in its own git worktree, on its own branch. Nobody blocks
    anybody. When the children are done the root merges their branches one by one:
    the clean merges are committed (each with the child's summary as its message);
    the second changelog edit conflicts, the conflict comes back to the root as an
    error result with the conflict text, and the root resolves it -- keeping both
    lines -- by calling ``merge_child`` again with the resolved text.
``--mode locked``
    Everyone works in the repository's directory itself, under path leases. The
    first child to write README.md leases it until it ends; the second is refused at
    write time, with the holder's id and role, and says so in its summary.

Either way the run ends by printing the final tree. Run it::

    python examples/parallel_edit.py                 # worktree mode
    python examples/parallel_edit.py --mode locked

The model is :class:`sessiontree.ScriptedProvider` with the deterministic policies
below: the run is offline and the same every time (in locked mode, which child wins
README.md depends on which writes first). Real models take a while; scripted ones answer
at once, so the two changelog editors meet at a barrier after their edits, standing in
for that time: the first writer is still at work when the second one writes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import sessiontree as st

README = """# widget

A small parsing library.

## Changes
- initial import
"""

CHILDREN: dict[str, dict[str, Any]] = {
    "parser-fix": {"file": ("src/parser.py", "def parse(text):\n    return text.split()\n"),
                   "changelog": "- fix the parser on empty input",
                   "capabilities": ["fs.read", "fs.write:src/**", "fs.write:README.md"]},
    "api-docs": {"file": ("docs/api.md", "# API\n\n`parse(text)` splits text into words.\n"),
                 "changelog": "- document the API",
                 "capabilities": ["fs.read", "fs.write:docs/**", "fs.write:README.md"]},
    "license": {"file": ("LICENSE", "MIT License\n"), "capabilities": ["fs.write:LICENSE"]},
    "tests": {"file": ("tests/test_parser.py",
                       "from src.parser import parse\n\ndef test_parse():\n"
                       "    assert parse('a b') == ['a', 'b']\n"),
              "capabilities": ["fs.write:tests/**"]},
}


EDITORS = threading.Barrier(sum("changelog" in plan for plan in CHILDREN.values()), timeout=60)
"""The changelog editors' meeting point after their edits (see the module docstring)."""


def changelog_patch(line: str) -> str:
    """A unified diff adding ``line`` at the end of the changelog."""
    return ("--- a/README.md\n+++ b/README.md\n@@ -5,2 +5,3 @@\n"
            " ## Changes\n - initial import\n" f"+{line}\n")


# -- the scripted model -------------------------------------------------------------------
def policy(turn: st.ScriptTurn) -> st.ModelReply:
    return _root(turn) if turn.role == "root" else _child(turn)


def _child(turn: st.ScriptTurn) -> st.ModelReply:
    plan = CHILDREN[turn.role]
    if turn.turn == 0:
        path, text = plan["file"]
        calls = [st.call("write_file", path=path, content=text)]
        if "changelog" in plan:
            calls.append(st.call("apply_patch", patch=changelog_patch(plan["changelog"])))
        return st.reply(f"{turn.role}: editing", *calls)
    if turn.turn == 1 and "changelog" in plan:
        EDITORS.wait()  # both edits were tried before either editor finishes
    failed = [json.loads(r.content) for r in turn.tool_results if not _ok(r)]
    if failed:
        return st.reply(f"{turn.role}: wrote {plan['file'][0]}; refused: {failed[0]['error']}")
    did = f"wrote {plan['file'][0]}"
    if "changelog" in plan:
        did += f", changelog: {plan['changelog'][2:]}"
    return st.reply(f"{turn.role}: {did}")


def _ok(message: st.ModelMessage) -> bool:
    try:
        body = json.loads(message.content)
    except ValueError:
        return True
    return not (isinstance(body, dict) and "error" in body and "reason" in body)


def _root(turn: st.ScriptTurn) -> st.ModelReply:
    mode = "worktree" if "mode=worktree" in turn.task else "locked"
    if turn.turn == 0:
        return st.reply("Spawning four children.", *[
            st.call("spawn_session", role=role, task=f"do your part ({role})",
                    capabilities=plan["capabilities"], budget={"model_runs": 4},
                    workspace_mode="worktree" if mode == "worktree" else "shared")
            for role, plan in CHILDREN.items()])
    if turn.turn == 1:
        return st.reply("Waiting for them.", st.call("wait_for_children"))
    if mode == "locked":
        children = turn.result_json()["children"]
        return st.reply("Children done in a locked workspace:\n" + "\n".join(
            f"- {c['summary']}" for c in children))
    if turn.turn == 2:
        children = turn.result_json()["children"]
        return st.reply("Merging each child's branch.", *[
            st.call("merge_child", child_id=c["child_id"]) for c in children])
    if turn.turn == 3:
        conflicts = [json.loads(r.content)["details"] for r in turn.tool_results if not _ok(r)]
        if conflicts:
            c = conflicts[0]
            resolved = {path: keep_both(text) for path, text in c["conflicts"].items()}
            return st.reply(f"Resolving the conflict in {', '.join(c['paths'])}.",
                            st.call("merge_child", child_id=c["child_id"], resolutions=resolved))
    return st.reply("Merged all four children; one conflict in README.md resolved by keeping both lines.")


def keep_both(text: str) -> str:
    """Resolve git conflict markers by keeping our lines, then theirs."""
    out: list[str] = []
    side = None
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<< "):
            side = "ours"
        elif line.startswith("=======") and side == "ours":
            side = "theirs"
        elif line.startswith(">>>>>>> ") and side == "theirs":
            side = None
        else:
            out.append(line)
    return "".join(out)


# -- running ------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    return subprocess.run(["git", "-c", "core.fsmonitor=false", "-C", str(repo), *args], env=env,
                          capture_output=True, text=True, check=True).stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Example")
    git(path, "config", "user.email", "example@example.invalid")
    (path / "README.md").write_text(README)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial import")
    return path


def final_tree(repo: Path, ref: str | None) -> list[str]:
    """The files of ``ref`` (a branch), or of the directory itself."""
    if ref is not None:
        return git(repo, "ls-tree", "-r", "--name-only", ref).split()
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(repo).parts)


def run(mode: str, base: Path) -> int:
    repo = make_repo(base / "repo")
    limits = st.Limits(max_children=4)
    with st.Runtime.open(base / "parallel_edit.db", providers=[st.ScriptedProvider(policy)],
                         limits=limits) as rt:
        root = rt.create_session(f"Improve the widget library (mode={mode}).",
                                 capabilities=["session.spawn", "fs.read", "fs.write"],
                                 workspace=repo, workspace_mode=mode, budget=st.Budget(model_runs=30))
        print(f"mode: {mode}; repository: {repo}")
        done = rt.wait(root, timeout=120)
        for node in rt.tree(root)[0].children:
            child = rt.session(node.session.id)
            print(f"child {child.role}: {child.state}: {child.summary}")
        for event in rt.events(root_id=root, type_prefix="FR-EVT-SESS-WORKSPACE-"):
            p, who = event.payload, rt.session(event.model_session_id or root).role
            if event.type.endswith("CONFLICT") and p["kind"] == "lease":
                print(f"refused at write time: {who} writing {p['paths'][0]}: leased for "
                      f"{p['lease_mode']} by {p['holder_session_id']} ({p['holder_role']})")
            elif event.type.endswith("CONFLICT"):
                role = rt.session(p["child_id"]).role
                print(f"merge conflict reported to {who}: {role} in {', '.join(p['paths'])}")
            elif event.type.endswith("MERGED"):
                how = f"resolved {', '.join(p['resolved'])}" if p["resolved"] else "clean"
                print(f"merged {rt.session(p['child_id']).role} ({how}): {p['commit'][:10]}")
        ref = f"sessiontree/{root}" if mode == "worktree" else None
        print(f"root: {done.state}: {done.summary}")
    print(f"final tree ({ref or repo}):")
    for name in final_tree(repo, ref):
        print(f"  {name}")
    readme = git(repo, "show", f"{ref}:README.md") if ref else (repo / "README.md").read_text()
    print("README.md:")
    print("".join(f"  | {line}" for line in readme.splitlines(keepends=True)), end="")
    return 0 if done.state == "completed" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mode", choices=["worktree", "locked"], default="worktree")
    parser.add_argument("--dir", help="an empty directory for the repository and the store "
                        "(default: a new temporary one)")
    args = parser.parse_args(argv)
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="parallel-edit-"))
    base.mkdir(parents=True, exist_ok=True)
    return run(args.mode, base)


if __name__ == "__main__":
    raise SystemExit(main())
