"""A small MCP server of our own (built with the ``mcp`` SDK) for the error cases:
a tool that reports an error (``isError``), one that kills the server mid-call, one with
a side effect it counts in a file. Run: ``python tests/mcp_test_server.py [COUNTER_FILE]``
(stdio) or ``... --http PORT`` (streamable HTTP on 127.0.0.1)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("sessiontree-test")
COUNTER = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else None


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo: {text}"


@server.tool(annotations=ToolAnnotations(read_only_hint=False, idempotent_hint=True))
def fail(why: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"failed on purpose: {why}")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def die() -> str:
    """Kill the server while the call is in flight."""
    os._exit(3)


@server.tool()
def bump() -> str:
    """Add one to the counter file (a side effect, no hints)."""
    assert COUNTER is not None
    value = int(COUNTER.read_text() or "0") + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(value))
    return str(value)


@server.tool(name="name.with.dots", annotations=ToolAnnotations(read_only_hint=True))
def dotted() -> str:
    """A tool whose name providers would refuse as is."""
    return "dotted"


if __name__ == "__main__":
    if "--http" in sys.argv:
        import anyio

        port = int(sys.argv[sys.argv.index("--http") + 1])
        anyio.run(lambda: server.run_streamable_http_async(host="127.0.0.1", port=port))
    else:
        server.run("stdio")
