"""JSON for values that come from outside: a model's tool arguments, a tool's result.

Such a value may be nested deeper than Python's JSON encoder and decoder can recurse
(a ``RecursionError``), hold a float ``NaN`` or infinity (not JSON), or hold objects
JSON has no form for. Nothing here recurses without a bound, and nothing raises.

- :func:`json_problem` says what is wrong with a value as JSON (or None);
- :func:`jsonable` makes a tool's result valid JSON: ``NaN`` and infinities become
  ``null`` (as pydantic and JavaScript's ``JSON.stringify`` do), other objects their
  ``str()``, keys strings, and a subtree deeper than :data:`MAX_DEPTH` a marker string;
- :func:`result_text` is that value as the text the model sees;
- :func:`literal_text` writes a value that is *not* valid JSON as text without loss
  where JSON can say it, iteratively, so it can be stored and refused with a reason.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sessiontree._safe_text import exception_text, printable

MAX_DEPTH = 200
"""Deepest nesting of tool arguments and results. No tool schema needs more; it keeps
every encoder, decoder and validator far from Python's recursion limit (1,000)."""

_SCALARS = (str, int, float, bool, type(None))


def json_problem(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """What keeps ``value`` from being plain JSON of at most ``max_depth`` levels, as a
    phrase (``'is nested deeper than 200 levels'``), or None if nothing does."""
    # One level at a time (no recursion, no tuple per item): the exact built-in types
    # first, as plain JSON holds nothing else; subclasses take the slow checks below.
    level, depth = [value], 1
    while level:
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                continue
            if kind is float or isinstance(item, float):
                if not math.isfinite(item):
                    return f"holds {item!r}, which JSON cannot represent"
                continue
            if isinstance(item, _SCALARS):
                continue
            if depth > max_depth:
                return f"is nested deeper than {max_depth} levels"
            if kind is dict or isinstance(item, dict):
                for key in item:
                    if type(key) is not str and not isinstance(key, str):
                        return f"has a key that is not a string ({type(key).__name__})"
                below.extend(item.values())
            elif kind is list or kind is tuple or isinstance(item, list | tuple):
                below.extend(item)
            else:
                return f"holds a {kind.__name__}, which JSON cannot represent"
        level, depth = below, depth + 1
    return None


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)  # what json.dumps makes of such a key
    return _str(key)


def _str(value: Any) -> str:
    try:
        return printable(str(value))
    except BaseException as exc:  # a value whose __str__ raises is still a result
        return f"<{type(value).__name__}: str() raised {exception_text(exc)}>"


def jsonable(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """A copy of ``value`` that is valid JSON (see the module docstring). Plain JSON
    values come back equal; a ``str`` comes back as is."""
    if json_problem(value, max_depth) is None:
        return value
    return _clean(value, 1, max_depth)


def _clean(value: Any, depth: int, max_depth: int) -> Any:
    # Recursion is bounded by max_depth (200), far below the interpreter's limit.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, _SCALARS):
        return value
    if depth > max_depth:
        return f"<nested deeper than {max_depth} levels>"
    if isinstance(value, dict):
        return {_key(k): _clean(v, depth + 1, max_depth) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1, max_depth) for v in value]
    return _str(value)


def result_text(value: Any) -> str:
    """A tool's result as the text the model sees: a ``str`` as is, anything else as
    valid JSON (sorted keys)."""
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), sort_keys=True)


def literal_text(value: Any) -> str:
    """``value`` written out as JSON-like text, iteratively (any depth): JSON where JSON
    can say it, ``NaN``/``Infinity`` as Python's encoder writes them, and any other
    object as ``<TypeName>`` -- so the text is refused by a JSON parser for the same
    reason the value is not JSON."""
    out: list[str] = []
    # A stack of pending work: values to write, or literal text to emit.
    stack: list[tuple[bool, Any]] = [(True, value)]
    while stack:
        is_value, item = stack.pop()
        if not is_value:
            out.append(item)
        elif isinstance(item, str | bool | int | type(None)):
            out.append(json.dumps(item))
        elif isinstance(item, float):
            out.append(json.dumps(item))  # NaN, Infinity: not JSON, on purpose
        elif isinstance(item, dict):
            parts: list[tuple[bool, Any]] = [(False, "}")]
            entries = list(item.items())
            for i, (key, sub) in enumerate(reversed(entries)):
                parts.append((True, sub))
                parts.append((False, json.dumps(_key(key)) + ":"))
                if i < len(entries) - 1:
                    parts.append((False, ","))
            parts.append((False, "{"))
            stack.extend(parts)
        elif isinstance(item, list | tuple):
            parts = [(False, "]")]
            for i, sub in enumerate(reversed(item)):
                parts.append((True, sub))
                if i < len(item) - 1:
                    parts.append((False, ","))
            parts.append((False, "["))
            stack.extend(parts)
        else:
            out.append(f"<{type(item).__name__}>")
    return "".join(out)
