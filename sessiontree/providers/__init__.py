"""Provider adapters: a neutral request in, a neutral reply (with tool calls) out."""

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

__all__ = [
    "ModelMessage",
    "ModelReply",
    "ModelRequest",
    "Provider",
    "ProviderError",
    "ScriptTurn",
    "ScriptedProvider",
    "ToolCall",
    "ToolSpec",
    "call",
    "reply",
]
