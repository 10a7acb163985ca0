"""The public surface is a decision, not an accident (after httpx's
``test_exported_members.py``): everything a user may import is in ``__all__``, has a
docstring, and nothing else public leaks into the package namespace."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import sessiontree

EXPECTED = sorted([
    "AnthropicProvider", "BackpressurePolicy", "OpenAIProvider", "Price", "PriceTable",
    "RateLimit", "ToolSchemaError", "McpServer", "McpServerError",
    "Budget", "CancelToken", "CapabilityTokenInfo", "Cancelled", "CorruptStore", "EffectClass", "EventInfo",
    "IllegalTransition", "InvalidInput", "JobInfo", "JobState", "Limits", "MailboxPost",
    "MessageInfo", "ModelMessage", "ModelReply", "ModelRequest", "Provider", "ProviderError",
    "Reason", "RecoveryReport", "RestartPolicy", "Runtime", "RuntimeClosed", "SchedulerDied",
    "SchedulerStats",
    "SchemaVersionError", "ScriptTurn", "ScriptedProvider", "SessionAnnounceBack", "SessionInfo",
    "SessionNode", "SessionSpawnRequest", "SessionSpawnResponse", "SessionState",
    "SessionTreeError", "StoreError", "StoreInUse", "StoreLost", "StoreReplaced", "SupervisorPolicy", "Tool",
    "ToolCall", "ToolCallInfo",
    "ToolCallState", "ToolContext", "ToolError", "ToolSpec", "Usage", "UnknownSession",
    "VerifyReport", "WaitTimeout", "WorkspaceConflict", "WorkspaceError", "call", "reply", "tool",
    "verify_store",
    # the Flight Recorder (issue 22)
    "CompactionReport", "EventTypeInfo", "ExportReport", "RetentionPolicy", "SpanInfo",
    "event_catalog", "verify_export",
])

# The sub-packages of DESIGN.md's layout. Importing the API imports them, so their names
# sit in the namespace; everything in them is internal (import from ``sessiontree``).
LAYOUT_PACKAGES = {"actors", "persistence", "providers", "supervision", "tools", "workspace"}


def test_public_names_are_pinned() -> None:
    assert sorted(sessiontree.__all__) == EXPECTED


def test_nothing_public_leaks_into_the_namespace_beyond_all() -> None:
    # In a fresh interpreter: other tests import sessiontree.testing, .console, ...
    code = ("import json, sessiontree; "
            "print(json.dumps(sorted(n for n in vars(sessiontree) if not n.startswith('_'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    public = set(json.loads(out.stdout))
    assert public - LAYOUT_PACKAGES == set(sessiontree.__all__)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(sessiontree, name)
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"sessiontree.{name} has no docstring"
    if inspect.isclass(obj):
        inherited = [c.__doc__ for c in obj.__mro__[1:] if c.__doc__]
        assert obj.__doc__ and obj.__doc__ not in inherited, f"{name} only inherits a docstring"


def test_every_public_method_of_the_runtime_has_a_docstring() -> None:
    missing = [name for name, fn in inspect.getmembers(sessiontree.Runtime, inspect.isfunction)
               if not name.startswith("_") and not inspect.getdoc(fn)]
    assert not missing


def test_every_error_shares_one_root() -> None:
    errors = [getattr(sessiontree, n) for n in EXPECTED
              if inspect.isclass(getattr(sessiontree, n))
              and issubclass(getattr(sessiontree, n), Exception)]
    assert len(errors) >= 10
    assert all(issubclass(e, sessiontree.SessionTreeError) for e in errors)


def test_importing_starts_no_thread_and_opens_no_file() -> None:
    code = ("import threading, sessiontree; "
            "print(threading.active_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
