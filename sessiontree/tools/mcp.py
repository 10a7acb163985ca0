"""MCP tools in the one registry: an MCP server's tools imported as :class:`Tool`\\ s.

Uses the official ``mcp`` SDK (extra ``mcp``). Transports: **stdio** (the server is a
child process, :meth:`McpServer.stdio`) and **streamable HTTP** (:meth:`McpServer.http`).

Each imported tool keeps the server's ``name`` (prefixed ``{server}__`` in the
registry, characters providers refuse replaced by ``_``), ``description`` and
``inputSchema`` (arguments are validated against it by the Tool Gate, before anything
runs), and gets:

- an effect class from the server's annotations: ``readOnlyHint`` -> ``read_only``,
  else ``idempotentHint`` -> ``idempotent``, otherwise ``side_effecting`` (hints are
  the server's claims: import only servers you trust that far);
- a capability named after the server and the tool, ``mcp.{server}.{tool}``, which a
  session must hold to be offered or to call it.

A result with ``isError`` becomes an error tool result the model sees (as does an MCP
error answer, such as an unknown tool). A server that dies is **restarted** on the
next call (a new process for stdio, a new session for HTTP); a call it died during is
**reported**: a ``read_only`` or ``idempotent`` call is retried once on the restarted
server, a ``side_effecting`` one raises :class:`McpServerError` -- a crash, so the
journal hands the call to an operator (its effect is unknown) instead of guessing.
Before a ``side_effecting`` call the server is pinged, so a server that died while idle
is restarted before the call, not blamed for it. A call that gets no answer within
``call_timeout`` also raises :class:`McpServerError`. No call waits forever.

The connection lives on its own event loop thread, started by the first use and
stopped by :meth:`McpServer.close` (or leaving ``with``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, model_validator

from sessiontree._cancellation import CancelToken
from sessiontree._errors import InvalidInput, SessionTreeError
from sessiontree._reasons import Reason
from sessiontree.providers.event_loop import LoopThread
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError

_SERVER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,30}$")
_REFUSED = re.compile(r"[^a-zA-Z0-9_-]")
CONNECTION_CLOSED = -32000  # the mcp SDK's code for a connection that ended

CALL_TIMEOUT = 120.0
"""Seconds a tool call may take before it is reported (its server may be wedged)."""
CONNECT_TIMEOUT = 30.0
"""Seconds to start a server and finish the MCP handshake."""


class McpServerError(SessionTreeError):
    """An MCP server could not be reached, died during a call, or did not answer.

    Raised from an imported tool it is a crash (retryable): supervision restarts the
    run, and the journal decides whether the call may run again."""

    reason = Reason.MCP_SERVER_UNAVAILABLE
    retryable = True


def effect_of(annotations: Any) -> EffectClass:
    """``readOnlyHint`` -> read_only, ``idempotentHint`` -> idempotent, else side_effecting."""
    if annotations is not None and getattr(annotations, "read_only_hint", None) is True:
        return EffectClass.READ_ONLY
    if annotations is not None and getattr(annotations, "idempotent_hint", None) is True:
        return EffectClass.IDEMPOTENT
    return EffectClass.SIDE_EFFECTING


def registry_name(server: str, tool: str) -> str:
    return f"{server}__{_REFUSED.sub('_', tool)}"


def _args_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A model that validates arguments against the server's JSON Schema and reports
    that schema as its own (so every provider is offered exactly what the server says)."""
    from jsonschema import validators  # a dependency of the mcp SDK

    validator = validators.validator_for(schema)(schema)
    published = dict(schema)

    class McpArguments(BaseModel):
        model_config = ConfigDict(extra="allow")

        @model_validator(mode="before")
        @classmethod
        def _against_schema(cls, data: Any) -> Any:
            problems = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
            if problems:
                raise ValueError("; ".join(
                    f"{'.'.join(str(p) for p in e.path) or '<root>'}: {e.message}"
                    for e in problems[:5]))
            return data

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return dict(published)

    McpArguments.__name__ = f"{name}_arguments"
    return McpArguments


def _value(result: Any) -> Any:
    """A ``CallToolResult`` as a tool's return value (``isError``: a ToolError)."""
    parts = []
    for block in result.content or ():
        if getattr(block, "type", None) == "text":
            parts.append(block.text)
        else:
            parts.append(f"[{getattr(block, 'type', 'content')} "
                         f"{getattr(block, 'mime_type', '') or ''}]".replace(" ]", "]"))
    if result.is_error:
        raise ToolError("\n".join(parts) or "the tool reported an error")
    if result.structured_content is not None:
        return result.structured_content
    return "\n".join(parts)


def _stderr() -> TextIO:
    """Where a stdio server's stderr goes: ours, unless it is not a real file (a host
    that replaced ``sys.stderr``), then nowhere."""
    try:
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return _devnull()


@functools.cache
def _devnull() -> TextIO:
    return open(os.devnull, "w")  # one per process, opened when first needed


class McpServer:
    """One MCP server, reached over stdio or streamable HTTP. Thread-safe."""

    def __init__(
        self,
        name: str,
        *,
        command: str | None = None,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        call_timeout: float = CALL_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        errlog: TextIO | None = None,
    ) -> None:
        if not isinstance(name, str) or not _SERVER_NAME.match(name):
            raise InvalidInput(f"MCP server name {name!r} must match {_SERVER_NAME.pattern}")
        if (command is None) == (url is None):
            raise InvalidInput("give an MCP server either a command (stdio) or a url (HTTP)")
        if call_timeout <= 0 or connect_timeout <= 0:
            raise InvalidInput("timeouts must be > 0 seconds")
        self.name = name
        self.command, self.args, self.env, self.cwd = command, list(args), dict(env or {}), cwd
        self.url, self.headers = url, dict(headers or {})
        self.call_timeout, self.connect_timeout = float(call_timeout), float(connect_timeout)
        self.errlog = errlog
        self.starts = 0  # how many times the server was (re)started
        self._loop = LoopThread(f"sessiontree-mcp-{name}", on_close=self._disconnect)
        # loop-thread state
        self._session: Any = None
        self._broken = False
        self._stop: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None

    @classmethod
    def stdio(cls, name: str, command: str, args: Iterable[str] = (), **options: Any) -> McpServer:
        """A server run as a child process speaking MCP on its stdin/stdout."""
        return cls(name, command=command, args=args, **options)

    @classmethod
    def http(cls, name: str, url: str, **options: Any) -> McpServer:
        """A server reached over MCP's streamable HTTP transport at ``url``."""
        return cls(name, url=url, **options)

    def __repr__(self) -> str:
        where = self.url or " ".join([self.command or "", *self.args])
        return f"McpServer({self.name!r}, {where!r})"

    def __enter__(self) -> McpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server (or end the HTTP session) and the connection's thread."""
        self._loop.close()

    # -- import -------------------------------------------------------------------------
    def tools(self, *, only: Iterable[str] | None = None, timeout: float | None = None) -> list[Tool]:
        """List the server's tools and return them as registry tools (``only``: these
        server-side names). Raises :class:`McpServerError` if the server cannot be
        reached, :class:`~sessiontree.ToolSchemaError` for a tool no provider accepts."""
        listed = self._run(self._list(), CancelToken(), timeout or self.connect_timeout)
        wanted = set(only) if only is not None else None
        out = []
        for t in listed:
            if wanted is not None and t.name not in wanted:
                continue
            out.append(self._tool(t))
        if wanted is not None and (missing := wanted - {t.name for t in listed}):
            raise InvalidInput(f"MCP server {self.name!r} has no tool {sorted(missing)}")
        return out

    def _tool(self, listed: Any) -> Tool:
        server_name: str = listed.name
        effect = effect_of(listed.annotations)
        name = registry_name(self.name, server_name)

        def call(ctx: ToolContext, args: BaseModel) -> Any:
            return self.call(server_name, args.model_dump(), effect, ctx.cancel)

        return Tool(
            name=name,
            description=(listed.description or server_name).strip()
            + f" (tool {server_name!r} of MCP server {self.name!r})",
            args_model=_args_model(name, listed.input_schema),
            fn=call,
            effect=effect,
            capability=f"mcp.{self.name}.{server_name}",
            # A server that dies mid-call (McpServerError) may or may not have acted: a
            # crash, so the journal decides whether the call may run again. A tool's own
            # failure (isError) comes back as an error result, not as an exception.
            on_error="crash",
        )

    # -- calls ----------------------------------------------------------------------------
    def call(self, tool: str, arguments: dict[str, Any], effect: EffectClass,
             cancel: CancelToken) -> Any:
        """Call ``tool`` on the server; see the module docstring for failures."""
        result = self._run(self._call(tool, arguments, effect), cancel, None)
        return _value(result)

    def _run(self, coro: Any, cancel: CancelToken, timeout: float | None) -> Any:
        async def bounded() -> Any:
            try:
                return await (asyncio.wait_for(coro, timeout) if timeout else coro)
            except TimeoutError as exc:
                raise McpServerError(f"MCP server {self.name!r} did not answer within "
                                     f"{timeout}s", server=self.name) from exc

        return self._loop.run(bounded, cancel)

    async def _list(self) -> list[Any]:
        session = await self._connect()
        tools: list[Any] = []
        cursor = None
        for _ in range(100):  # a paginator that never ends cannot hang us
            from mcp.types import PaginatedRequestParams

            page = await session.list_tools(
                params=PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def _call(self, tool: str, arguments: dict[str, Any], effect: EffectClass) -> Any:
        from mcp import MCPError

        session = await self._connect()
        if effect == EffectClass.SIDE_EFFECTING:
            try:  # died while idle? restart it now, before a call we could not repeat
                await asyncio.wait_for(session.send_ping(), self.call_timeout)
            except (MCPError, TimeoutError):
                self._broken = True
                session = await self._connect()
        for attempt in (1, 2):
            try:
                return await asyncio.wait_for(session.call_tool(tool, arguments), self.call_timeout)
            except TimeoutError as exc:
                self._broken = True
                raise McpServerError(f"MCP server {self.name!r}: {tool} got no answer within "
                                     f"{self.call_timeout}s", server=self.name, tool=tool) from exc
            except MCPError as exc:
                if exc.code != CONNECTION_CLOSED:
                    raise ToolError(f"MCP server {self.name!r}: {exc.message}") from exc
                self._broken = True
                if effect == EffectClass.SIDE_EFFECTING or attempt == 2:
                    raise McpServerError(f"MCP server {self.name!r} died during {tool}",
                                         server=self.name, tool=tool) from exc
                session = await self._connect()
        raise AssertionError("unreachable")

    # -- the connection, on the loop ---------------------------------------------------------
    async def _connect(self) -> Any:
        if self._session is not None and not self._broken:
            return self._session
        await self._disconnect()
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._holder = asyncio.create_task(self._hold(ready, self._stop))
        try:
            return await asyncio.wait_for(asyncio.shield(ready), self.connect_timeout)
        except TimeoutError as exc:
            await self._disconnect()
            raise McpServerError(f"MCP server {self.name!r} did not start within "
                                 f"{self.connect_timeout}s", server=self.name) from exc
        except McpServerError:
            raise
        except Exception as exc:
            raise McpServerError(f"MCP server {self.name!r} could not be reached: "
                                 f"{type(exc).__name__}: {exc}", server=self.name) from exc

    def _transport(self) -> Any:
        if self.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            if self.headers:
                import httpx2

                client = httpx2.AsyncClient(headers=self.headers)
                return streamable_http_client(self.url, http_client=client)
            return streamable_http_client(self.url)
        from mcp import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=self.command or "", args=self.args,
                                       env=self.env or None, cwd=self.cwd)
        return stdio_client(params, errlog=self.errlog or _stderr())

    async def _hold(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        """Open the transport and the session in this one task (the SDK's scopes are
        task-bound), hand the session over, and keep them open until ``stop``."""
        from mcp import ClientSession

        session = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self.starts += 1
                self._session, self._broken = session, False
                ready.set_result(session)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else
                                    McpServerError(f"MCP server {self.name!r} stopped"))
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._session is session:
                self._session = None

    async def _disconnect(self) -> None:
        holder, stop = self._holder, self._stop
        self._holder = self._stop = None
        self._session = None
        if holder is None or stop is None:
            return
        stop.set()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(holder, self.connect_timeout)
