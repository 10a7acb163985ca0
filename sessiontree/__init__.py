"""sessiontree: run many LLM model sessions at once, as a supervised, persisted tree of
actors. Import from here; everything else is internal."""

import logging as _logging

from sessiontree._budget import Budget, Usage
from sessiontree._cancellation import Cancelled, CancelToken
from sessiontree._errors import (
    CorruptStore,
    IllegalTransition,
    InvalidInput,
    RuntimeClosed,
    SchemaVersionError,
    SessionTreeError,
    StoreError,
    StoreInUse,
    UnknownSession,
    WaitTimeout,
    WorkspaceConflict,
)
from sessiontree._limits import Limits, RestartPolicy
from sessiontree._messages import (
    SessionAnnounceBack,
    SessionSpawnRequest,
    SessionSpawnResponse,
)
from sessiontree._reasons import Reason
from sessiontree._recorder import EventTypeInfo, event_catalog
from sessiontree._runtime import Runtime
from sessiontree._states import JobState, SessionState, ToolCallState
from sessiontree._version import __version__ as __version__
from sessiontree._views import (
    EventInfo,
    JobInfo,
    MailboxPost,
    MessageInfo,
    SessionInfo,
    SessionNode,
    SpanInfo,
    ToolCallInfo,
)
from sessiontree.persistence.export import ExportReport, verify_export
from sessiontree.persistence.retention import CompactionReport, RetentionPolicy
from sessiontree.persistence.verify import VerifyReport, verify_store
from sessiontree.providers.base import (
    ModelMessage,
    ModelReply,
    ModelRequest,
    Provider,
    ProviderError,
    ToolCall,
    ToolSpec,
)
from sessiontree.providers.scripted import ScriptedProvider, ScriptTurn, call, reply
from sessiontree.supervision.recovery import RecoveryReport
from sessiontree.supervision.scheduler import SchedulerStats
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError, tool

_logging.getLogger(__name__).addHandler(_logging.NullHandler())


__all__ = [
    "Budget",
    "CancelToken",
    "Cancelled",
    "CompactionReport",
    "CorruptStore",
    "EffectClass",
    "EventInfo",
    "EventTypeInfo",
    "ExportReport",
    "IllegalTransition",
    "InvalidInput",
    "JobInfo",
    "JobState",
    "Limits",
    "MailboxPost",
    "MessageInfo",
    "ModelMessage",
    "ModelReply",
    "ModelRequest",
    "Provider",
    "ProviderError",
    "Reason",
    "RecoveryReport",
    "RestartPolicy",
    "RetentionPolicy",
    "Runtime",
    "RuntimeClosed",
    "SchedulerStats",
    "SchemaVersionError",
    "ScriptTurn",
    "ScriptedProvider",
    "SessionAnnounceBack",
    "SessionInfo",
    "SessionNode",
    "SessionSpawnRequest",
    "SessionSpawnResponse",
    "SessionState",
    "SessionTreeError",
    "SpanInfo",
    "StoreError",
    "StoreInUse",
    "Tool",
    "ToolCall",
    "ToolCallInfo",
    "ToolCallState",
    "ToolContext",
    "ToolError",
    "ToolSpec",
    "UnknownSession",
    "Usage",
    "VerifyReport",
    "WaitTimeout",
    "WorkspaceConflict",
    "call",
    "event_catalog",
    "reply",
    "tool",
    "verify_export",
    "verify_store",
]
