"""MCP tools in the one registry, over stdio: ``mcp-server-time`` from PyPI (a server
nobody here wrote) and a small server of our own for the error cases
(``tests/mcp_test_server.py``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree.tools.mcp import effect_of

McpServer, McpServerError = st.McpServer, st.McpServerError

OURS = str(Path(__file__).resolve().parent / "mcp_test_server.py")
WAIT = 30.0


def scripted(*turns: Any) -> st.ScriptedProvider:
    """A provider that plays ``turns`` in order (by the session's turn number)."""

    def policy(turn: st.ScriptTurn) -> Any:
        return turns[min(turn.turn, len(turns) - 1)]

    return st.ScriptedProvider(policy)


@pytest.fixture
def time_server() -> Iterator[McpServer]:
    with McpServer.stdio("time", sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"],
                         ) as server:
        yield server


@pytest.fixture
def our_server(tmp_path: Path) -> Iterator[McpServer]:
    with McpServer.stdio("ours", sys.executable, [OURS, str(tmp_path / "counter")]) as server:
        yield server


def test_mcp_server_time_tools_import_with_effects_capabilities_and_schemas(time_server: McpServer) -> None:
    tools = {t.name: t for t in time_server.tools()}

    assert sorted(tools) == ["time__convert_time", "time__get_current_time"]
    now = tools["time__get_current_time"]
    assert now.effect == st.EffectClass.READ_ONLY  # readOnlyHint
    assert now.capability == "mcp.time.get_current_time"
    schema = now.spec().input_schema
    assert schema["required"] == ["timezone"] and schema["type"] == "object"
    assert "Get current time" in now.description


def test_a_session_calls_an_mcp_tool_through_the_tool_gate(db_path: Path, time_server: McpServer) -> None:
    provider = scripted(st.reply("", st.call("time__get_current_time", timezone="Europe/Paris")),
                        st.reply("done"))
    with st.Runtime.open(db_path, providers=[provider], tools=time_server.tools()) as rt:
        sid = rt.create_session("what time is it in Paris?",
                                capabilities=["mcp.time.get_current_time"])
        done = rt.wait(sid, timeout=WAIT)
        result = next(m for m in rt.messages(sid) if m.role == "tool")
        denied = rt.create_session("no capability")  # not offered, and refused if called
        refused = rt.wait(denied, timeout=WAIT)
        refusal = next(m for m in rt.messages(denied) if m.role == "tool")

    assert done.state == "completed"
    value = json.loads(result.body["content"])
    assert value["timezone"] == "Europe/Paris" and "datetime" in value
    assert result.body["ok"] is True
    assert refused.state == "completed"
    assert json.loads(refusal.body["content"])["reason"] == "capability_denied"


def test_arguments_that_do_not_fit_the_servers_schema_are_refused_before_the_call(
    db_path: Path, time_server: McpServer,
) -> None:
    provider = scripted(st.reply("", st.call("time__get_current_time", tz="Europe/Paris")),
                        st.reply("done"))
    with st.Runtime.open(db_path, providers=[provider], tools=time_server.tools()) as rt:
        sid = rt.create_session("t", capabilities=["mcp.time.get_current_time"])
        rt.wait(sid, timeout=WAIT)
        (result,) = [m for m in rt.messages(sid) if m.role == "tool"]

    error = json.loads(result.body["content"])
    assert error["reason"] == "invalid_args" and "timezone" in error["error"]


def test_an_is_error_result_becomes_an_error_tool_result(db_path: Path, our_server: McpServer) -> None:
    provider = scripted(st.reply("", st.call("ours__fail", why="testing"),
                                 st.call("time_unknown", x=1)),
                        st.reply("saw the errors"))
    with st.Runtime.open(db_path, providers=[provider], tools=our_server.tools()) as rt:
        sid = rt.create_session("t", capabilities=["mcp.ours.fail"])
        done = rt.wait(sid, timeout=WAIT)
        results = [m.body for m in rt.messages(sid) if m.role == "tool"]
        events = [e.payload for e in rt.events(session_id=sid, type_prefix="FR-EVT-SESS-TOOL-RESULT")]

    assert done.state == "completed"
    assert results[0]["ok"] is False
    assert "failed on purpose: testing" in json.loads(results[0]["content"])["error"]
    assert [(e["ok"], e["reason"]) for e in events] == [(False, "tool_error"), (False, "unknown_tool")]


def test_effects_come_from_annotations_and_names_providers_refuse_are_made_safe(
    our_server: McpServer,
) -> None:
    tools = {t.name: t for t in our_server.tools()}

    assert {n: t.effect.value for n, t in tools.items()} == {
        "ours__echo": "read_only", "ours__fail": "idempotent", "ours__die": "read_only",
        "ours__bump": "side_effecting", "ours__name_with_dots": "read_only"}
    assert tools["ours__name_with_dots"].capability == "mcp.ours.name.with.dots"
    assert effect_of(None) == st.EffectClass.SIDE_EFFECTING


def test_a_server_that_dies_during_a_call_is_reported_then_restarted_for_the_next(
    db_path: Path, our_server: McpServer,
) -> None:
    provider = scripted(st.reply("", st.call("ours__die")), st.reply("never"))
    limits = st.Limits(restart=st.RestartPolicy(max_restarts=1, backoff_initial=0.0))
    tools = our_server.tools(only=["die", "echo"])
    with st.Runtime.open(db_path, providers=[provider], tools=tools, limits=limits) as rt:
        sid = rt.create_session("t", capabilities=["mcp.ours.die"])
        dead = rt.wait(sid, timeout=WAIT)
        crashes = [e.payload for e in rt.events(session_id=sid, type_prefix="FR-EVT-SESS-CRASHED")]

    assert (dead.state, dead.reason) == ("failed", "restart_intensity")  # reported, not wedged
    assert crashes and all(c["error_type"] == "McpServerError" for c in crashes)
    assert "died during die" in crashes[0]["error"]
    started = our_server.starts
    echo = {t.name: t for t in tools}["ours__echo"]
    back = our_server.call("echo", {"text": "back"}, echo.effect, st.CancelToken())
    assert back == {"result": "echo: back"}
    assert our_server.starts == started + 1  # a new process


def test_a_side_effecting_call_runs_once_on_a_server_restarted_while_idle(
    tmp_path: Path, our_server: McpServer,
) -> None:
    tools = {t.name: t for t in our_server.tools()}
    bump, die = tools["ours__bump"], tools["ours__die"]
    token = st.CancelToken()
    assert our_server.call("bump", {}, bump.effect, token) == {"result": "1"}
    with pytest.raises(McpServerError):
        our_server.call("die", {}, st.EffectClass.SIDE_EFFECTING, token)  # dies; not retried
    assert die.effect == st.EffectClass.READ_ONLY
    assert our_server.call("bump", {}, bump.effect, token) == {"result": "2"}  # restarted first
    assert (tmp_path / "counter").read_text() == "2"


def test_a_server_that_cannot_start_is_a_clear_error() -> None:
    with McpServer.stdio("nothing", sys.executable, ["-c", "import sys; sys.exit(2)"],
                         connect_timeout=10) as broken, \
            pytest.raises(McpServerError) as failed:
        broken.tools()
    assert failed.value.reason == st.Reason.MCP_SERVER_UNAVAILABLE


def test_bad_server_definitions_are_refused() -> None:
    with pytest.raises(st.InvalidInput):
        McpServer("has space", command="x")
    with pytest.raises(st.InvalidInput):
        McpServer("both", command="x", url="http://127.0.0.1:1/mcp")


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """Our server on streamable HTTP at 127.0.0.1, started as a child process; yields its
    URL once it says it listens (read from its log, never by sleeping)."""
    import os
    import selectors
    import socket
    import subprocess
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, OURS, str(tmp_path / "counter"), "--http", str(port)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + WAIT
        log = b""
        while b"running on" not in log.lower():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise AssertionError(f"the MCP HTTP server did not start: {log!r}")
            chunk = os.read(proc.stderr.fileno(), 65536)  # unbuffered: select sees it all
            if not chunk:
                raise AssertionError(f"the MCP HTTP server exited: {log!r}")
            log += chunk
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_tools_import_and_run_over_streamable_http(db_path: Path, http_server: str) -> None:
    with McpServer.http("web", http_server) as server:
        tools = server.tools(only=["echo", "fail"])
        provider = scripted(st.reply("", st.call("web__echo", text="over http"),
                                     st.call("web__fail", why="http")), st.reply("done"))
        with st.Runtime.open(db_path, providers=[provider], tools=tools) as rt:
            sid = rt.create_session("t", capabilities=["mcp.web.echo", "mcp.web.fail"])
            done = rt.wait(sid, timeout=WAIT)
            results = [m.body for m in rt.messages(sid) if m.role == "tool"]

    assert done.state == "completed"
    assert json.loads(results[0]["content"]) == {"result": "echo: over http"}
    assert results[1]["ok"] is False and "failed on purpose: http" in results[1]["content"]
