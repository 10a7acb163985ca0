"""sessiontree: run many LLM model sessions at once, as a supervised, persisted tree of
actors. Import from here; everything else is internal."""

import logging

from sessiontree.actors.messages import (
    SessionAnnounceBack,
    SessionSpawnRequest,
    SessionSpawnResponse,
)
from sessiontree.budget import Budget, Usage
from sessiontree.cancellation import Cancelled, CancelToken
from sessiontree.errors import (
    CapabilityDenied,
    CorruptStore,
    IllegalTransition,
    InvalidInput,
    LimitExceeded,
    RecoveryError,
    RuntimeClosed,
    SchemaVersionError,
    SessionTreeError,
    SpawnRejected,
    StoreError,
    StoreInUse,
    UnknownSession,
    WaitTimeout,
    WorkspaceConflict,
)
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
from sessiontree.reasons import Reason
from sessiontree.runtime import Runtime
from sessiontree.states import SessionState
from sessiontree.supervision.backpressure import BackpressurePolicy, RateLimit
from sessiontree.supervision.limits import Limits, RestartPolicy
from sessiontree.supervision.recovery import RecoveryReport
from sessiontree.tools.mcp import McpServer, McpServerError
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError, tool
from sessiontree.views import SessionInfo, SessionNode

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "AnthropicProvider",
    "BackpressurePolicy",
    "Budget",
    "CancelToken",
    "Cancelled",
    "CapabilityDenied",
    "CorruptStore",
    "EffectClass",
    "IllegalTransition",
    "InvalidInput",
    "LimitExceeded",
    "Limits",
    "McpServer",
    "McpServerError",
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
    "RecoveryError",
    "RecoveryReport",
    "RestartPolicy",
    "Runtime",
    "RuntimeClosed",
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
    "SpawnRejected",
    "StoreError",
    "StoreInUse",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "ToolSchemaError",
    "ToolSpec",
    "UnknownSession",
    "Usage",
    "VerifyReport",
    "WaitTimeout",
    "WorkspaceConflict",
    "call",
    "reply",
    "tool",
    "verify_store",
]
