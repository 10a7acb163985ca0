"""Prices turn usage into cost; provider failures map to retryable or not, with the
provider's Retry-After. Decisions tested by tables."""

from __future__ import annotations

import email.utils
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree._reasons import Reason
from sessiontree.providers import failures
from sessiontree.providers.pricing import DEFAULT_PRICES, PRICES_AS_OF, PriceTable


@pytest.mark.parametrize("model,priced_as", [
    ("gpt-4o", "gpt-4o"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("claude-opus-4-1-20250805", "claude-opus-4-1"),
    ("claude-opus-4-5", None),        # a newer model is not priced as an older one
    ("gpt-4o-audio-preview", None),
    ("llama3.2", None),
])
def test_a_model_is_priced_by_name_or_dated_snapshot_and_otherwise_unknown(
    model: str, priced_as: str | None,
) -> None:
    table = PriceTable.default()
    assert table.price(model) == (DEFAULT_PRICES[priced_as] if priced_as else None)
    assert table.as_of == PRICES_AS_OF


def test_cost_is_dollars_per_million_tokens_and_an_unknown_price_counts_an_unpriced_run() -> None:
    table = PriceTable.default().merged({"my-model": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}})
    priced = table.usage("my-model", 1_000_000, 500_000)
    assert (priced.cost, priced.unpriced_runs, priced.model_runs) == (6.0, 0, 1)
    unknown = table.usage("other-model", 1000, 1000)
    assert (unknown.cost, unknown.unpriced_runs) == (0.0, 1)
    assert (priced + unknown).unpriced_runs == 1


def test_a_users_price_overrides_the_default_and_a_bad_price_is_refused() -> None:
    provider = st.OpenAIProvider("gpt-4o", api_key="k", prices={"gpt-4o": st.Price(
        input_per_mtok=1.0, output_per_mtok=1.0)})
    assert provider.price("default") == st.Price(input_per_mtok=1.0, output_per_mtok=1.0)
    with pytest.raises(st.InvalidInput):
        st.Price(input_per_mtok=-1, output_per_mtok=1)


def test_a_loopback_base_url_makes_a_local_free_provider_and_a_remote_one_is_not() -> None:
    assert st.OpenAIProvider("llama3.2", base_url="http://localhost:11434/v1").local
    assert st.OpenAIProvider("m", base_url="http://127.0.0.2:8000/v1").local
    assert st.OpenAIProvider("m", base_url="http://[::1]:8000/v1").local
    remote = st.OpenAIProvider("m", base_url="https://llm.example.com/v1")
    assert not remote.local and remote.price("m") is None
    assert st.OpenAIProvider("llama3.2", base_url="http://localhost:11434/v1").price(
        "llama3.2") == st.Price(input_per_mtok=0, output_per_mtok=0)
    assert not st.AnthropicProvider("claude-sonnet-4-20250514").local


@pytest.mark.parametrize("status,error_type,code,reason,retryable", [
    (400, "invalid_request_error", None, Reason.PROVIDER_BAD_REQUEST, False),
    (401, "authentication_error", None, Reason.PROVIDER_AUTH, False),
    (403, "permission_error", None, Reason.PROVIDER_PERMISSION, False),
    (404, "not_found_error", None, Reason.PROVIDER_NOT_FOUND, False),
    (413, "request_too_large", None, Reason.PROVIDER_BAD_REQUEST, False),
    (422, None, None, Reason.PROVIDER_BAD_REQUEST, False),
    (429, "rate_limit_error", None, Reason.PROVIDER_RATE_LIMITED, True),
    (429, "insufficient_quota", "insufficient_quota", Reason.PROVIDER_QUOTA, False),
    (500, "api_error", None, Reason.PROVIDER_SERVER_ERROR, True),
    (502, None, None, Reason.PROVIDER_SERVER_ERROR, True),
    (503, None, None, Reason.PROVIDER_OVERLOADED, True),
    (529, "overloaded_error", None, Reason.PROVIDER_OVERLOADED, True),
    (408, None, None, Reason.PROVIDER_SERVER_ERROR, True),
    (200, "overloaded_error", None, Reason.PROVIDER_OVERLOADED, True),   # an error event mid-stream
    (200, "invalid_request_error", None, Reason.PROVIDER_BAD_REQUEST, False),
])
def test_provider_failures_map_to_a_reason_and_whether_to_retry(
    status: int, error_type: str | None, code: str | None, reason: Reason, retryable: bool,
) -> None:
    assert failures.classify(status, error_type, code) == (reason, retryable)


@pytest.mark.parametrize("headers,expected", [
    ({"retry-after": "7"}, 7.0),
    ({"Retry-After": "1.5"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after": email.utils.formatdate(1_000_030.0, usegmt=True)}, 30.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_retry_after_is_read_as_the_sdks_read_it(headers: dict[str, str], expected: Any) -> None:
    assert failures.retry_after(headers, now=1_000_000.0) == expected


def test_an_sdk_status_error_becomes_a_provider_error_with_its_facts() -> None:
    class Response:
        headers = {"retry-after": "3"}

    class RateLimitError(Exception):
        status_code = 429
        response = Response()
        body = {"error": {"type": "requests", "code": "rate_limit_exceeded", "message": "slow"}}
        message = "Rate limit reached"

    err = failures.from_status_error(RateLimitError(), "openai")
    assert (err.retryable, err.retry_after, err.status, err.reason, err.provider) == (
        True, 3.0, 429, Reason.PROVIDER_RATE_LIMITED, "openai")
    assert isinstance(err, st.SessionTreeError)


def test_a_child_with_a_cost_budget_on_an_unpriced_model_is_refused_at_spawn(tmp_path: Path) -> None:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="t", provider="remote"))
        return st.reply(turn.tool_results[0].content)

    remote = st.OpenAIProvider("my-finetune", api_key="k", base_url="http://127.0.0.1:9/v1",
                               local=False, name="remote")  # never called: the spawn is refused
    with st.Runtime.open(tmp_path / "s.db", providers=[st.ScriptedProvider(policy), remote]) as rt:
        sid = rt.create_session("t", provider="scripted", budget=st.Budget(cost=1.0),
                                capabilities=["session.spawn"])
        done = rt.wait(sid, timeout=20)
        rejected = [e.payload for e in rt.events(session_id=sid,
                                                  type_prefix="FR-EVT-SESS-SPAWN-REJECTED")]

    assert done.state == "completed" and "cost_unknown" in (done.summary or "")
    assert rejected[0]["reason"] == "cost_unknown"
