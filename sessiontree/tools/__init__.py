"""Tools: one registry, the Tool Gate that decides every call, and the built-ins."""

from sessiontree.tools.gate import GateDecision, ToolGate
from sessiontree.tools.registry import (
    EffectClass,
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    tool,
)

__all__ = [
    "EffectClass",
    "GateDecision",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolGate",
    "ToolRegistry",
    "tool",
]
