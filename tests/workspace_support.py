"""Helpers for the workspace tests: real git repositories in tmp_path, tool results."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import sessiontree as st

USER = ("Test User", "test@example.invalid")


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repository with one commit holding ``files``, user name and email fixed."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", USER[0])
    git(path, "config", "user.email", USER[1])
    for name, text in (files or {"README.md": "hello\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def tool_results(rt: st.Runtime, session_id: str, tool: str | None = None) -> list[dict[str, Any]]:
    """The session's tool results, in order: {"tool", "ok", "value", "trust"}."""
    out = []
    for m in rt.messages(session_id):
        if m.role != "tool" or (tool is not None and m.body.get("name") != tool):
            continue
        try:
            value = json.loads(m.body["content"])
        except ValueError:
            value = m.body["content"]
        out.append({"tool": m.body.get("name"), "ok": m.body["ok"], "value": value, "trust": m.trust})
    return out


def trap(repo: Path, marker: Path) -> None:
    """Every way a repository's config or hooks could run a program, pointing at one
    script that leaves ``marker`` behind."""
    script = repo.parent / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    hooks = repo / ".git" / "hooks"
    for hook in ("pre-commit", "commit-msg", "post-commit", "pre-merge-commit", "post-merge",
                 "post-checkout", "reference-transaction", "prepare-commit-msg"):
        (hooks / hook).write_text(script.read_text())
        (hooks / hook).chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(script))
    git(repo, "config", "core.hooksPath", str(hooks))
    git(repo, "config", "core.pager", str(script))
    git(repo, "config", "core.editor", str(script))
    git(repo, "config", "commit.gpgSign", "true")
    git(repo, "config", "gpg.program", str(script))
