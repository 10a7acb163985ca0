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
    SchedulerDied,
    SchemaVersionError,
    SessionTreeError,
    StoreError,
    StoreInUse,
    StoreLost,
    StoreReplaced,
    UnknownSession,
    WaitTimeout,
    WorkspaceConflict,
    WorkspaceError,
)
from sessiontree._limits import (
    BackpressurePolicy,
    Limits,
    RateLimit,
    RestartPolicy,
    SupervisorPolicy,
)
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
    CapabilityTokenInfo,
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
from sessiontree.providers.anthropic_messages import AnthropicProvider
from sessiontree.providers.base import (
    ModelMessage,
    ModelReply,
    ModelRequest,
    Provider,
    ProviderError,
    ToolCall,
    ToolSpec,
)
from sessiontree.providers.openai_chat import OpenAIProvider
from sessiontree.providers.pricing import Price, PriceTable
from sessiontree.providers.scripted import ScriptedProvider, ScriptTurn, call, reply
from sessiontree.providers.tool_surface import ToolSchemaError
from sessiontree.supervision.recovery import RecoveryReport
from sessiontree.supervision.scheduler import SchedulerStats
from sessiontree.tools.mcp import McpServer, McpServerError
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError, tool

_logging.getLogger(__name__).addHandler(_logging.NullHandler())


__all__ = [
    "AnthropicProvider",
    "BackpressurePolicy",
    "Budget",
    "CancelToken",
    "Cancelled",
    "CapabilityTokenInfo",
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
    "McpServer",
    "McpServerError",
    "MessageInfo",
    "ModelMessage",
    "ModelReply",
    "ModelRequest",
    "OpenAIProvider",
    "Price",
    "PriceTable",
    "Provider",
    "ProviderError",
    "RateLimit",
    "Reason",
    "RecoveryReport",
    "RestartPolicy",
    "RetentionPolicy",
    "Runtime",
    "RuntimeClosed",
    "SchedulerDied",
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
    "StoreLost",
    "StoreReplaced",
    "SupervisorPolicy",
    "Tool",
    "ToolCall",
    "ToolCallInfo",
    "ToolCallState",
    "ToolContext",
    "ToolError",
    "ToolSchemaError",
    "ToolSpec",
    "UnknownSession",
    "Usage",
    "VerifyReport",
    "WaitTimeout",
    "WorkspaceConflict",
    "WorkspaceError",
    "call",
    "event_catalog",
    "reply",
    "tool",
    "verify_export",
    "verify_store",
]
