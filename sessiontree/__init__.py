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
    SchedulerDied,
    SchemaVersionError,
    SessionTreeError,
    SpawnRejected,
    StoreError,
    StoreInUse,
    StoreLost,
    StoreReplaced,
    UnknownSession,
    WaitTimeout,
    WorkspaceConflict,
)
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
from sessiontree.reasons import Reason
from sessiontree.runtime import Runtime
from sessiontree.states import SessionState
from sessiontree.supervision.limits import Limits, RestartPolicy
from sessiontree.supervision.recovery import RecoveryReport
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError, tool
from sessiontree.views import SessionInfo, SessionNode

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
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
    "ModelMessage",
    "ModelReply",
    "ModelRequest",
    "Provider",
    "ProviderError",
    "Reason",
    "RecoveryError",
    "RecoveryReport",
    "RestartPolicy",
    "Runtime",
    "RuntimeClosed",
    "SchedulerDied",
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
    "StoreLost",
    "StoreReplaced",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
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
