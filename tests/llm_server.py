"""A loopback HTTP server that speaks a provider's protocol, scripted by the test.

Each POST is answered by the next scripted :class:`Reply`: a JSON document with a
status and headers (errors, non-streamed replies), or a stream of server-sent events
(``text/event-stream``) as the OpenAI and Anthropic APIs send them. A reply with
``hold_after=N`` sends N events and then waits for the client to hang up, recording it
in :attr:`LLMServer.disconnected`: what a cancelled session must do to its stream.
Only 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_LIMIT = 20.0
"""Seconds a held stream waits for the client to hang up before giving up."""


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    events: list[tuple[str | None, Any]] | None = None
    hold_after: int | None = None


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def openai_sse(chunks: list[dict[str, Any]], *, hold_after: int | None = None) -> Reply:
    events: list[tuple[str | None, Any]] = [(None, c) for c in chunks]
    if hold_after is None:
        events.append((None, "[DONE]"))
    return Reply(events=events, hold_after=hold_after)


def anthropic_sse(events: list[dict[str, Any]], *, hold_after: int | None = None) -> Reply:
    return Reply(events=[(e["type"], e) for e in events], hold_after=hold_after)


def error(status: int, body: dict[str, Any], **headers: str) -> Reply:
    return Reply(status=status, body=body, headers=dict(headers))


class LLMServer:
    """``responder``, if given, answers every request instead of the scripted queue."""

    def __init__(self, responder: Callable[[Seen], Reply] | None = None) -> None:
        self.responder = responder
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.held = threading.Event()  # a held stream sent its events
        self.disconnected = threading.Event()  # ... and the client hung up
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                with server.lock:
                    server.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()},
                                            json.loads(raw or b"{}")))
                    seen = server.seen[-1]
                    server.arrived.notify_all()
                if server.responder is not None:
                    reply = server.responder(seen)
                else:
                    with server.lock:
                        reply = server.replies.popleft() if server.replies else error(
                            500, {"error": {"type": "api_error", "message": "no scripted reply"}})
                if reply.events is None:
                    self._json(reply)
                else:
                    self._stream(reply)

            def _json(self, reply: Reply) -> None:
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                assert reply.events is not None
                for i, (name, data) in enumerate(reply.events):
                    if reply.hold_after is not None and i >= reply.hold_after:
                        break
                    text = data if isinstance(data, str) else json.dumps(data)
                    frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                    self.wfile.write(frame.encode())
                    self.wfile.flush()
                self.close_connection = True
                if reply.hold_after is not None:
                    server.held.set()
                    if _wait_for_hangup(self.connection, HOLD_LIMIT):
                        server.disconnected.set()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="llm-server",
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def push(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def requests(self) -> int:
        with self.lock:
            return len(self.seen)

    def wait_requests(self, n: int, timeout: float = 10.0) -> list[Seen]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.seen) >= n, timeout):
                raise AssertionError(f"{len(self.seen)} requests, not {n}, within {timeout}s")
            return list(self.seen)

    def __enter__(self) -> LLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _wait_for_hangup(conn: socket.socket, limit: float) -> bool:
    """True once the peer closed its end (a read returns b'' or fails)."""
    readable, _, _ = select.select([conn], [], [], limit)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True



# -- each provider's replies, as its API reference shows them ---------------------------------
def openai_chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
                 usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
        "choices": [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def openai_text(text: str, prompt_tokens: int = 20, completion_tokens: int = 5, *,
                hold_after: int | None = None) -> Reply:
    half = len(text) // 2
    return openai_sse([
        openai_chunk({"role": "assistant", "content": text[:half]}),
        openai_chunk({"content": text[half:]}),
        openai_chunk({}, finish="stop"),
        openai_chunk(usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens}),
    ], hold_after=hold_after)


def openai_tools(*calls: tuple[str, str, str], prompt_tokens: int = 30,
                 completion_tokens: int = 12) -> Reply:
    """(id, name, arguments JSON text) per call; arguments arrive in two fragments."""
    chunks = [openai_chunk({"role": "assistant", "content": None})]
    for i, (cid, name, args) in enumerate(calls):
        chunks.append(openai_chunk({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                                    "function": {"name": name, "arguments": ""}}]}))
        cut = len(args) // 2
        for part in (args[:cut], args[cut:]):
            chunks.append(openai_chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
    chunks.append(openai_chunk({}, finish="tool_calls"))
    chunks.append(openai_chunk(usage={"prompt_tokens": prompt_tokens,
                                      "completion_tokens": completion_tokens,
                                      "total_tokens": prompt_tokens + completion_tokens}))
    return openai_sse(chunks)


def anthropic_text(text: str, input_tokens: int = 20, output_tokens: int = 5, *,
                   hold_after: int | None = None) -> Reply:
    half = len(text) // 2
    return anthropic_sse([
        {"type": "message_start", "message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant",
            "content": [], "model": "claude-sonnet-4-20250514", "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:half]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[half:]}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ], hold_after=hold_after)


def anthropic_tools(*calls: tuple[str, str, str], input_tokens: int = 30,
                    output_tokens: int = 12) -> Reply:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {
            "id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant",
            "content": [], "model": "claude-sonnet-4-20250514", "stop_reason": None,
            "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}},
    ]
    for i, (cid, name, args) in enumerate(calls):
        events.append({"type": "content_block_start", "index": i, "content_block": {
            "type": "tool_use", "id": cid, "name": name, "input": {}}})
        cut = len(args) // 2
        for part in (args[:cut], args[cut:]):
            events.append({"type": "content_block_delta", "index": i,
                           "delta": {"type": "input_json_delta", "partial_json": part}})
        events.append({"type": "content_block_stop", "index": i})
    events += [
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]
    return anthropic_sse(events)


OPENAI_429 = {"error": {"message": "Rate limit reached for gpt-4o-mini in organization org-x on "
                                   "requests per min (RPM): Limit 3, Used 3, Requested 1.",
                        "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
OPENAI_401 = {"error": {"message": "Incorrect API key provided: sk-bad. You can find your API "
                                   "key at https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
ANTHROPIC_429 = {"type": "error", "error": {"type": "rate_limit_error",
                                            "message": "Number of request tokens has exceeded your "
                                                       "per-minute rate limit"}}
ANTHROPIC_401 = {"type": "error", "error": {"type": "authentication_error",
                                            "message": "invalid x-api-key"}}
