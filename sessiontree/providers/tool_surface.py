"""One tool surface: each tool's pydantic model rendered once into what each provider
needs, and checked at registration against what every provider accepts.

A tool is defined once (name, description, a pydantic model for its input). Its JSON
Schema is rendered into:

- ``openai``: a Chat Completions tool, ``{"type": "function", "function": {"name",
  "description", "parameters"}}``;
- ``anthropic``: a Messages tool, ``{"name", "description", "input_schema"}``;
- ``mcp``: an MCP tool listing entry, ``{"name", "description", "inputSchema"}``.

Each rendering is computed once per :class:`ToolSpec` and kept with it.

:func:`check_tool` refuses, with :class:`ToolSchemaError`, what a provider would
reject at request time -- better a clear error when the tool is registered than a
``400`` in the middle of a session tree:

- a name outside ``^[a-zA-Z0-9_-]{1,64}$`` (OpenAI and Anthropic both enforce it; a
  ``.`` or a space is refused);
- a schema whose root is not ``"type": "object"``, or that uses ``anyOf``, ``oneOf``,
  ``allOf``, ``not``, ``enum``, ``const`` or ``if``/``then``/``else`` at its root
  (Anthropic refuses them there; OpenAI requires an object root);
- a ``$ref`` that is not a local ``#/$defs/...`` (or ``#/definitions/...``) pointer to
  a definition the schema holds (providers do not fetch remote schemas);
- a ``type`` that is not a JSON Schema type, or a schema that is not JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from sessiontree._errors import InvalidInput
from sessiontree.providers.base import ToolSpec

Surface = Literal["openai", "anthropic", "mcp"]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What every provider accepts as a tool name."""

_ROOT_REFUSED = ("anyOf", "oneOf", "allOf", "not", "enum", "const", "if", "then", "else")
_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not", "contains", "propertyNames",
                   "if", "then", "else")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


class ToolSchemaError(InvalidInput):
    """A tool's name or input schema is one a provider would reject."""

    def __init__(self, tool: str, problem: str) -> None:
        super().__init__(f"tool {tool!r}: {problem}", tool=tool, problem=problem)
        self.tool = tool
        self.problem = problem


def check_name(name: str) -> None:
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ToolSchemaError(str(name), "name must match ^[a-zA-Z0-9_-]{1,64}$ "
                                         "(letters, digits, '_' and '-'; no '.' or spaces)")


def check_schema(name: str, schema: Any) -> None:
    """Raise :class:`ToolSchemaError` for a schema a provider would reject."""
    if not isinstance(schema, dict):
        raise ToolSchemaError(name, "input schema must be a JSON object")
    try:
        json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolSchemaError(name, f"input schema is not JSON: {exc}") from exc
    if schema.get("type") != "object":
        raise ToolSchemaError(name, f'input schema root must be "type": "object", '
                                    f"got {schema.get('type')!r}")
    for key in _ROOT_REFUSED:
        if key in schema:
            raise ToolSchemaError(name, f"input schema uses {key!r} at its root, "
                                        "which providers refuse there")
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    _walk(name, schema, defs, "#")


def _walk(name: str, node: Any, defs: dict[str, Any], where: str) -> None:
    if not isinstance(node, dict):
        if isinstance(node, bool):
            return  # true/false are schemas too
        raise ToolSchemaError(name, f"{where}: a schema must be an object, got {type(node).__name__}")
    ref = node.get("$ref")
    if ref is not None:
        match = re.match(r"^#/(\$defs|definitions)/(.+)$", str(ref))
        if match is None or match.group(2) not in defs:
            raise ToolSchemaError(name, f"{where}: $ref {ref!r} is not a local definition "
                                        "of this schema")
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    for k in kinds:
        if k not in _TYPES:
            raise ToolSchemaError(name, f"{where}: unknown type {k!r}")
    for key in _SUBSCHEMA_KEYS:
        if key in node:
            sub = node[key]
            for i, item in enumerate(sub) if isinstance(sub, list) else [(None, sub)]:
                _walk(name, item, defs, f"{where}/{key}" + ("" if i is None else f"/{i}"))
    for key in _SUBSCHEMA_LISTS:
        for i, sub in enumerate(node.get(key, ()) if isinstance(node.get(key), list) else ()):
            _walk(name, sub, defs, f"{where}/{key}/{i}")
    for key in _SUBSCHEMA_MAPS:
        sub_map = node.get(key)
        if isinstance(sub_map, dict):
            for prop, sub in sub_map.items():
                _walk(name, sub, defs, f"{where}/{key}/{prop}")


def check_tool(name: str, schema: Any) -> None:
    check_name(name)
    check_schema(name, schema)


# -- rendering --------------------------------------------------------------------------
def _openai(spec: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": spec.name, "description": spec.description, "parameters": spec.input_schema}}


def _anthropic(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.input_schema}


def _mcp(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "inputSchema": spec.input_schema}


_RENDER: dict[str, Callable[[ToolSpec], dict[str, Any]]] = {
    "openai": _openai, "anthropic": _anthropic, "mcp": _mcp,
}


def render(spec: ToolSpec, surface: Surface) -> dict[str, Any]:
    """``spec`` in ``surface``'s wire shape; computed once per spec and surface.

    The returned dict is shared: treat it as read-only.
    """
    cache = spec.rendered_cache()
    out = cache.get(surface)
    if out is None:
        out = cache[surface] = _RENDER[surface](spec)
    return out
