"""Running the ``git`` command line, hardened so no session can steer it.

A session never passes arguments to git: every argument is built here or in
``workspace.worktrees`` (refs we name, paths after ``--``). What could still steer
git is its environment and its configuration, so each run:

- drops every ``GIT_*`` variable of the host's environment (``GIT_DIR``,
  ``GIT_WORK_TREE``, ``GIT_CONFIG_*``, ...) and names the git dir and work tree
  explicitly, so git never discovers a repository by itself (a ``.git`` or a bare
  repository planted in a workspace is never read);
- ignores the system and global configuration (``GIT_CONFIG_NOSYSTEM``,
  ``GIT_CONFIG_GLOBAL=/dev/null``);
- overrides, on the command line (which beats the repository's own config), every
  setting known to run a program or reach out: hooks (``core.hooksPath``),
  ``core.fsmonitor``, ``core.sshCommand``, pagers and editors, signing, protocols;
- never prompts (``GIT_TERMINAL_PROMPT=0``) and is killed after :data:`GIT_TIMEOUT`.

Filters, merge and diff drivers named in ``.gitattributes`` run only if the
repository's own configuration defines them -- which sessions cannot write (path
safety refuses every ``.git``).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from sessiontree._errors import WorkspaceError
from sessiontree._reasons import Reason

log = logging.getLogger(__name__)

GIT_TIMEOUT = 120.0
"""Seconds one git command may take; a worktree add on a large repository is the
slowest we run."""

HARDENING: tuple[str, ...] = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.sshCommand=false",
    "-c", "core.pager=cat",
    "-c", "core.editor=false",
    "-c", "core.askPass=false",
    "-c", "core.autocrlf=false",
    "-c", "core.symlinks=true",
    "-c", "sequence.editor=false",
    "-c", "commit.gpgSign=false",
    "-c", "tag.gpgSign=false",
    "-c", "merge.verifySignatures=false",
    "-c", "protocol.allow=never",
    "-c", "safe.bareRepository=explicit",
    "-c", "submodule.recurse=false",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
    "-c", "credential.helper=",
)

_REF = re.compile(r"^sessiontree/ses_[0-9a-f]{20}$")
_SHA = re.compile(r"^[0-9a-f]{40,64}$")


class GitFailed(WorkspaceError):
    """A git command failed; ``stderr`` is what it said."""

    reason = Reason.WORKSPACE_ERROR


def branch_for(session_id: str) -> str:
    """The branch a session's own worktree is on: ``sessiontree/<session-id>``."""
    name = f"sessiontree/{session_id}"
    if not _REF.match(name):
        raise WorkspaceError(f"not a session id: {session_id!r}")
    return name


def check_ref(ref: str) -> str:
    """A ref we pass to git: one of our branches or a full commit id, never text that
    could read as an option."""
    if _REF.match(ref) or _SHA.match(ref) or ref == "HEAD":
        return ref
    raise WorkspaceError(f"refusing git ref {ref!r}")


def environment(author: tuple[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_EDITOR": "false",
        "GIT_OPTIONAL_LOCKS": "0",
        "LC_ALL": "C",
    })
    name, email = author or ("sessiontree", "sessiontree@sessiontree.invalid")
    for who in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{who}_NAME"] = name
        env[f"GIT_{who}_EMAIL"] = email
    return env


def author_for(session_id: str, role: str) -> tuple[str, str]:
    """Commits of a session are authored by it: ``sessiontree <role>``."""
    safe_role = re.sub(r"[^A-Za-z0-9 _.-]", "", role)[:60].strip() or "session"
    return f"sessiontree {safe_role}", f"{session_id}@sessiontree.invalid"


@dataclass(frozen=True)
class Git:
    """git for one repository: ``git_dir`` (a worktree's own, or the common one) and,
    for commands that touch files, its ``work_tree``."""

    git_dir: str
    work_tree: str | None = None

    def run(
        self, *args: str, input: str | None = None, ok: Sequence[int] = (0,),
        author: tuple[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = ["git", *HARDENING, f"--git-dir={self.git_dir}"]
        if self.work_tree is not None:
            argv.append(f"--work-tree={self.work_tree}")
        argv.extend(args)
        cwd = self.work_tree or self.git_dir
        try:
            done = subprocess.run(argv, cwd=cwd, env=environment(author), input=input,
                                  capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise GitFailed(f"git {args[0]} took longer than {GIT_TIMEOUT}s") from None
        except OSError as exc:
            raise GitFailed(f"cannot run git: {exc}", reason=Reason.WORKSPACE_UNAVAILABLE) from None
        if done.returncode not in ok:
            err = (done.stderr or done.stdout).strip()
            log.debug("git %s failed (%d): %s", args, done.returncode, err)
            raise GitFailed(f"git {args[0]} failed: {err[:500]}", stderr=err[:2000],
                            code=done.returncode)
        return done

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def names(self, *args: str) -> list[str]:
        """The NUL-separated paths a ``-z`` command prints."""
        return [p for p in self.run(*args).stdout.split("\0") if p]


def discover(directory: str) -> tuple[str, str]:
    """For a directory the host names: the repository's top level and common git dir.
    The one place git looks for a repository by itself (the host chose it)."""
    argv = ["git", *HARDENING, "-C", directory, "rev-parse", "--path-format=absolute",
            "--show-toplevel", "--git-common-dir"]
    try:
        done = subprocess.run(argv, env=environment(), capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitFailed(f"cannot run git: {exc}", reason=Reason.WORKSPACE_UNAVAILABLE) from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or len(lines) != 2:
        raise GitFailed(f"{directory} is not inside a git repository's work tree: "
                        f"{done.stderr.strip()[:300]}", reason=Reason.WORKSPACE_UNAVAILABLE)
    return os.path.realpath(lines[0]), os.path.realpath(lines[1])
