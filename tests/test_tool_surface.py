"""One tool surface: a tool is defined once and rendered for each provider; names and
schemas a provider would reject fail at registration, with a clear error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

import sessiontree as st
from sessiontree.providers.tool_surface import check_schema, render


class SearchArgs(BaseModel):
    query: str = Field(description="what to look for")
    limit: int = 10


def noop(ctx: st.ToolContext, args: Any) -> str:
    return ""


def test_a_tool_renders_once_into_each_providers_shape_from_its_pydantic_model() -> None:
    search = st.Tool("search_docs", "Search the docs.", SearchArgs, noop, capability="docs.read")
    spec = search.spec()
    schema = SearchArgs.model_json_schema()
    assert render(spec, "openai") == {"type": "function", "function": {
        "name": "search_docs", "description": "Search the docs.", "parameters": schema}}
    assert render(spec, "anthropic") == {
        "name": "search_docs", "description": "Search the docs.", "input_schema": schema}
    assert render(spec, "mcp") == {
        "name": "search_docs", "description": "Search the docs.", "inputSchema": schema}
    assert render(spec, "openai") is render(spec, "openai")  # rendered once, kept


@pytest.mark.parametrize("name", ["read.file", "read file", "", "x" * 65, "naïve", "a/b"])
def test_a_tool_name_providers_refuse_fails_at_registration(name: str) -> None:
    with pytest.raises(st.ToolSchemaError) as refused:
        st.Tool(name, "d", SearchArgs, noop)
    assert refused.value.reason == st.Reason.INVALID_INPUT
    assert "^[a-zA-Z0-9_-]{1,64}$" in str(refused.value)


@pytest.mark.parametrize("name", ["read_file", "Read-File-2", "_private", "9lives", "x" * 64])
def test_names_every_provider_accepts_register(name: str) -> None:
    assert st.Tool(name, "d", SearchArgs, noop).name == name


@pytest.mark.parametrize("schema,problem", [
    ({"type": "array", "items": {"type": "string"}}, 'root must be "type": "object"'),
    ({"anyOf": [{"type": "object"}, {"type": "string"}]}, 'root must be "type": "object"'),
    ({"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, "'oneOf' at its root"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
     "is not a local definition"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}, "is not a local definition"),
    ({"type": "object", "properties": {"a": {"type": "text"}}}, "unknown type 'text'"),
    ({"type": "object", "properties": {"a": {"type": "number", "maximum": float("nan")}}}, "not JSON"),
])
def test_a_schema_providers_would_reject_is_caught_with_the_reason(schema: dict[str, Any],
                                                                   problem: str) -> None:
    with pytest.raises(st.ToolSchemaError) as refused:
        check_schema("t", schema)
    assert problem in str(refused.value)


def test_a_pydantic_model_with_nested_definitions_passes_the_checks() -> None:
    class Inner(BaseModel):
        x: int

    class Outer(BaseModel):
        inner: Inner
        many: list[Inner] = []
        pair: tuple[int, str] | None = None

    tool = st.Tool("nested", "d", Outer, noop)
    assert "$defs" in tool.spec().input_schema


def test_a_model_that_is_not_an_object_at_its_root_is_refused_at_registration() -> None:
    from pydantic import RootModel

    class Names(RootModel[list[str]]):
        pass

    with pytest.raises(st.ToolSchemaError, match="root must be"):
        st.Tool("names", "d", Names, noop)  # type: ignore[arg-type]
