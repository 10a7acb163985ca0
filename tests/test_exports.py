"""The public surface is a decision, not an accident."""

from __future__ import annotations

import subprocess
import sys

import sessiontree

EXPECTED = sorted([
    "Budget", "CancelToken", "Cancelled", "CapabilityDenied", "CorruptStore", "EffectClass",
    "IllegalTransition", "InvalidInput", "LimitExceeded", "Limits", "ModelMessage", "ModelReply",
    "ModelRequest", "Provider", "ProviderError", "Reason", "RecoveryError", "RecoveryReport",
    "RestartPolicy", "Runtime", "RuntimeClosed", "SchedulerDied", "SchemaVersionError", "ScriptTurn",
    "ScriptedProvider", "SessionAnnounceBack", "SessionInfo", "SessionNode", "SessionSpawnRequest",
    "SessionSpawnResponse", "SessionState", "SessionTreeError", "SpawnRejected", "StoreError",
    "StoreInUse", "StoreLost", "StoreReplaced", "Tool", "ToolCall", "ToolContext", "ToolError",
    "ToolSpec", "Usage",
    "UnknownSession", "VerifyReport", "WaitTimeout", "WorkspaceConflict", "call", "reply", "tool",
    "verify_store",
])


def test_public_names_are_pinned() -> None:
    assert sorted(sessiontree.__all__) == EXPECTED


def test_every_error_shares_one_root() -> None:
    errors = [getattr(sessiontree, n) for n in EXPECTED if n.endswith(("Error", "Exceeded",
              "Rejected", "Denied", "Conflict", "Transition", "Input", "Session", "Closed",
              "Timeout", "InUse", "Store", "Died", "Lost", "Replaced"))]
    assert errors and all(issubclass(e, sessiontree.SessionTreeError) for e in errors)


def test_importing_starts_no_thread_and_opens_no_file() -> None:
    code = ("import threading, sessiontree; "
            "print(threading.active_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
