"""A model's reply, made storable before the turn writes it.

What a model sends is the model's business, mistakes included, and a mistake must come
back to it as an error tool result -- not crash the session (and pay for the call again
on every restart). The reply is stored whole and losslessly, so the history the model
sees next turn is exactly what it sent:

- text with lone surrogates is stored as is (canonical JSON falls back to ASCII escapes;
  see ``persistence.artifacts.canonical_bytes``); a tool *name* goes into a column too,
  so the journal row holds its printable form (``safe_text.printable``), under which no
  tool is registered: the call is answered ``unknown_tool``;
- tool arguments that are not plain JSON -- nested deeper than ``jsonsafe.MAX_DEPTH``
  (100,000 levels would crash every JSON encoder), holding ``NaN`` or a non-JSON object
  -- are replaced by their text (``jsonsafe.literal_text``, written without recursion),
  which the Tool Gate then refuses with ``invalid_args`` and the reason.
"""

from __future__ import annotations

from sessiontree._jsonsafe import json_problem, literal_text
from sessiontree.providers.base import ModelReply, ToolCall


def storable_reply(reply: ModelReply) -> ModelReply:
    """``reply`` with every tool call's arguments storable (see the module docstring);
    ``reply`` itself when nothing needed changing (the common case)."""
    calls: list[ToolCall] = []
    changed = False
    for call in reply.tool_calls:
        args = call.arguments
        if not isinstance(args, str) and json_problem(args) is not None:
            call = call.model_copy(update={"arguments": literal_text(args)})
            changed = True
        calls.append(call)
    return reply.model_copy(update={"tool_calls": tuple(calls)}) if changed else reply
