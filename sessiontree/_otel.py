"""OpenTelemetry export of the Flight Recorder's spans (extra ``otel``).

Our spans become OpenTelemetry spans with the **GenAI semantic conventions**, as of
semantic-conventions v1.41.0 (the last release holding them before they moved to their
own repository; status "Development"):

- a session's life -> an *invoke agent internal* span: ``gen_ai.operation.name =
  invoke_agent``, name ``invoke_agent {gen_ai.agent.name}``, kind INTERNAL
  (docs/gen-ai/gen-ai-agent-spans.md, "Invoke agent internal span");
- a model_run -> an *inference* span: ``gen_ai.operation.name = chat``, name
  ``chat {gen_ai.request.model}``, kind CLIENT (docs/gen-ai/gen-ai-spans.md,
  "Inference");
- a tool call -> an *execute tool* span: ``gen_ai.operation.name = execute_tool``, name
  ``execute_tool {gen_ai.tool.name}``, kind INTERNAL (gen-ai-spans.md, "Execute tool
  span").

Attributes (docs/registry/attributes/gen-ai.md): ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.agent.id`` (the session id), ``gen_ai.agent.name``
(its role), ``gen_ai.conversation.id`` (the root session's id: one conversation per
tree), ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
``gen_ai.tool.type``; ``error.type`` on a failed span (general/recording-errors.md); and
ours: ``sessiontree.model_session_id``, ``sessiontree.job_id``, ``sessiontree.attempt``,
``sessiontree.status``.

Trace and span ids are ours (128 and 64 bits), so the parent links are the Flight
Recorder's: a child's ``invoke_agent`` span, and every ``chat`` and ``execute_tool``
under it, sit under the parent's ``execute_tool spawn_session`` span, in the parent's
trace. Spans are handed to an OpenTelemetry SDK ``SpanProcessor`` when they end
(``on_end``); use a ``BatchSpanProcessor`` in production so the export never runs on
the committing thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sessiontree._errors import InvalidInput
from sessiontree._version import __version__
from sessiontree.persistence.spans import ERROR, MODEL_RUN, SESSION, SpanRecord

SEMCONV_VERSION = "1.41.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"


def _require_sdk() -> Any:
    try:
        from opentelemetry.sdk import trace as sdk_trace
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InvalidInput("OpenTelemetry export needs the 'otel' extra: "
                           "pip install 'sessiontree[otel]'") from exc
    return sdk_trace


def check_processor(processor: Any) -> None:
    """Refuse an object that cannot take ended spans (no ``on_end``)."""
    if not callable(getattr(processor, "on_end", None)):
        raise InvalidInput("a span processor needs an on_end(span) method "
                           "(an opentelemetry.sdk.trace.SpanProcessor)")


def genai_attributes(span: SpanRecord) -> tuple[str, dict[str, Any]]:
    """The OpenTelemetry span name and attributes of one of our spans."""
    a = span.attributes
    attrs: dict[str, Any] = {
        "gen_ai.conversation.id": span.root_id,
        "sessiontree.model_session_id": span.model_session_id,
        "sessiontree.status": span.status or "open",
    }
    if span.kind == SESSION:
        name = f"invoke_agent {a.get('role', '')}".strip()
        attrs.update({"gen_ai.operation.name": "invoke_agent",
                      "gen_ai.agent.id": span.model_session_id,
                      "gen_ai.agent.name": a.get("role", ""),
                      "gen_ai.provider.name": a.get("provider", "_OTHER"),
                      "gen_ai.request.model": a.get("model", "")})
    elif span.kind == MODEL_RUN:
        name = f"chat {a.get('model', '')}".strip()
        attrs.update({"gen_ai.operation.name": "chat",
                      "gen_ai.provider.name": a.get("provider", "_OTHER"),
                      "gen_ai.request.model": a.get("model", ""),
                      "gen_ai.agent.name": a.get("role", ""),
                      "sessiontree.job_id": span.job_id or "",
                      "sessiontree.attempt": span.attempt})
    else:
        name = f"execute_tool {span.name}"
        attrs.update({"gen_ai.operation.name": "execute_tool",
                      "gen_ai.tool.name": span.name,
                      "gen_ai.tool.call.id": span.call_id or "",
                      "gen_ai.tool.type": "function",
                      "sessiontree.tool.effect": a.get("effect", "")})
    if span.kind != "tool_call":
        attrs["gen_ai.usage.input_tokens"] = span.input_tokens
        attrs["gen_ai.usage.output_tokens"] = span.output_tokens
    if span.status == ERROR:
        attrs["error.type"] = span.status_detail or "_OTHER"
    return name, attrs


def to_readable_span(span: SpanRecord, resource: Any = None) -> Any:
    """An ended span as an OpenTelemetry SDK ``ReadableSpan`` (our ids, our parents)."""
    sdk_trace = _require_sdk()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    trace = int(span.trace_id, 16)
    flags = TraceFlags(TraceFlags.SAMPLED)
    context = SpanContext(trace, int(span.span_id, 16), is_remote=False, trace_flags=flags)
    parent = (None if span.parent_span_id is None else
              SpanContext(trace, int(span.parent_span_id, 16), is_remote=False, trace_flags=flags))
    name, attrs = genai_attributes(span)
    status = (Status(StatusCode.ERROR, span.status_detail) if span.status == ERROR
              else Status(StatusCode.UNSET))
    end = span.end if span.end is not None else span.start
    return sdk_trace.ReadableSpan(
        name=name, context=context, parent=parent,
        resource=resource if resource is not None else Resource.create(
            {"service.name": "sessiontree"}),
        attributes=attrs,
        kind=SpanKind.CLIENT if span.kind == MODEL_RUN else SpanKind.INTERNAL,
        status=status, start_time=int(span.start * 1e9), end_time=int(end * 1e9),
        instrumentation_scope=InstrumentationScope("sessiontree", __version__, SCHEMA_URL),
    )


def emit(processor: Any, spans: Iterable[SpanRecord], resource: Any = None) -> int:
    """Hand every ended span to ``processor.on_end``; return how many."""
    n = 0
    for span in spans:
        if span.end is not None:
            processor.on_end(to_readable_span(span, resource))
            n += 1
    return n
