"""The workspace tools: how a session touches files (``sessiontree.workspace``).

``read_file``, ``list_dir`` (capability ``fs.read``), ``write_file``, ``delete_file``,
``apply_patch``, ``merge_child`` (``fs.write``) and ``lease_paths`` (``fs.read``, and
``fs.write`` for write leases). Each is scoped: a session holding ``fs.write:src/**``
may write under ``src/`` only. The gate checks the paths as the model wrote them; the
operation checks them again once resolved, so an inner symlink cannot lead a write out
of the session's scope.

They are registered in every runtime (built-ins, bound to its ``Workspaces``), go
through the Tool Gate and the journal like any tool, and their results are stored as
untrusted content. Every refusal -- a path outside the workspace, a conflict, a merge
that does not apply -- is an error result naming what was refused and why, with its
facts under ``details``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sessiontree._errors import WorkspaceError
from sessiontree.tools import scopes
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError
from sessiontree.workspace import globs, operations
from sessiontree.workspace import patch as patches
from sessiontree.workspace.merging import merge_child
from sessiontree.workspace.paths import check_relative, facts
from sessiontree.workspace.service import Workspaces

A = TypeVar("A", bound=BaseModel)

MAX_CONTENT = 4 * 1024 * 1024
"""Largest text write_file and apply_patch accept (4 MiB)."""

MAX_PATH_TEXT = 16_384
"""Bound on a path argument's text; path safety then refuses past 4096 bytes, saying so."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadFileArgs(_Args):
    path: str = Field(min_length=1, max_length=MAX_PATH_TEXT, description="path relative to the workspace")


class ListDirArgs(_Args):
    path: str = Field(default=".", min_length=1, max_length=MAX_PATH_TEXT,
                      description="directory relative to the workspace (default: its root)")


class WriteFileArgs(_Args):
    path: str = Field(min_length=1, max_length=MAX_PATH_TEXT, description="path relative to the workspace")
    content: str = Field(max_length=MAX_CONTENT, description="the file's whole new text")


class DeleteFileArgs(_Args):
    path: str = Field(min_length=1, max_length=MAX_PATH_TEXT, description="path relative to the workspace")


class ApplyPatchArgs(_Args):
    patch: str = Field(min_length=1, max_length=MAX_CONTENT,
                       description="a unified diff (--- a/path, +++ b/path, @@ hunks)")


class MergeChildArgs(_Args):
    child_id: str = Field(min_length=1, max_length=200, description="a completed child session's id")
    resolutions: dict[str, str | None] | None = Field(
        default=None, description="after a conflict: the final text of every conflicting path "
        "(null deletes it)")


class LeasePathsArgs(_Args):
    paths: list[str] = Field(min_length=1, max_length=64, description="paths or globs (*, ?, **)")
    mode: Literal["read", "write"] = Field(
        default="write", description="read leases share; a write lease excludes every other session")


def _path(args: Any) -> list[str]:
    return [check_relative(args.path)]


def _patch_paths(args: ApplyPatchArgs) -> list[str]:
    return [check_relative(fp.path) for fp in patches.parse(args.patch)]


def _patterns(args: LeasePathsArgs) -> list[str]:
    return [globs.check_pattern(p) for p in args.paths]


def workspace_tools(ws: Workspaces) -> tuple[Tool, ...]:
    """The workspace tools of one runtime, bound to its :class:`Workspaces`."""

    def permit(ctx: ToolContext) -> operations.Permit:
        held = ws.session(ctx.session_id).capabilities
        return lambda mode, path: scopes.covered(held, scopes.scoped(f"fs.{mode}", path))

    def tool(name: str, description: str, args: type[A], capability: str, effect: EffectClass,
             scope: Callable[[Any], list[str]], run: Callable[[ToolContext, A], Any]) -> Tool:
        def fn(ctx: ToolContext, a: A) -> Any:
            try:
                return run(ctx, a)
            except WorkspaceError as exc:
                raise ToolError(str(exc), reason=exc.reason, **facts(exc)) from None

        return Tool(name=name, description=description, args_model=args, fn=fn, effect=effect,
                    capability=capability, builtin=True, scope=scope)

    return (
        tool("read_file", "Read a UTF-8 text file of the workspace (up to 1 MiB).",
             ReadFileArgs, "fs.read", EffectClass.READ_ONLY, _path,
             lambda ctx, a: operations.read_file(ws, ctx.session_id, a.path, permit(ctx))),
        tool("list_dir", "List a directory of the workspace: names, types, sizes.",
             ListDirArgs, "fs.read", EffectClass.READ_ONLY, _path,
             lambda ctx, a: operations.list_dir(ws, ctx.session_id, a.path, permit(ctx))),
        tool("write_file", "Create or replace a text file of the workspace (atomically). "
             "In a shared workspace the first write leases the path until this session ends; "
             "a path another session leased is refused at once.",
             WriteFileArgs, "fs.write", EffectClass.IDEMPOTENT, _path,
             lambda ctx, a: operations.write_file(ws, ctx.session_id, ctx.call_id, a.path,
                                                  a.content, permit(ctx))),
        tool("delete_file", "Delete a file of the workspace.",
             DeleteFileArgs, "fs.write", EffectClass.IDEMPOTENT, _path,
             lambda ctx, a: operations.delete_file(ws, ctx.session_id, ctx.call_id, ctx.attempt,
                                                   a.path, permit(ctx))),
        tool("apply_patch", "Apply a unified diff to files of the workspace: all files or none.",
             ApplyPatchArgs, "fs.write", EffectClass.IDEMPOTENT, _patch_paths,
             lambda ctx, a: operations.apply_patch(ws, ctx.session_id, ctx.call_id, ctx.attempt,
                                                   a.patch, permit(ctx))),
        tool("merge_child", "Merge a completed child's branch (worktree mode) into this "
             "session's worktree. A conflict aborts the merge and lists the paths with their "
             "conflict text; call again with resolutions to finish it.",
             MergeChildArgs, "fs.write", EffectClass.IDEMPOTENT, lambda a: [],
             lambda ctx, a: merge_child(ws, ctx.session_id, a.child_id, a.resolutions,
                                        permit(ctx))),
        tool("lease_paths", "Lease paths or globs of a shared workspace before working on "
             "them, all or none: read leases share, a write lease excludes other sessions.",
             LeasePathsArgs, "fs.read", EffectClass.IDEMPOTENT, _patterns,
             lambda ctx, a: operations.lease_paths(ws, ctx.session_id, a.paths, a.mode, permit(ctx))),
    )
