"""``examples/real_model.py``: with no arguments it runs the research tree on the
scripted provider; ``--provider openai-compatible`` runs it through the OpenAI SDK
against a server on loopback that answers as a model would (the research tree's own
scripted policy, spoken over Chat Completions)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer, Reply, Seen, openai_chunk, openai_sse

import sessiontree as st
from sessiontree.console._common import load_module_from_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example() -> Any:
    return load_module_from_file(EXAMPLES / "real_model.py", "sessiontree_example_real_model")


@pytest.mark.timeout(90)
def test_with_no_arguments_it_runs_the_research_tree_on_the_scripted_provider(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "real_model.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=80, check=False)
    assert done.returncode == 0, done.stderr
    assert "on scripted" in done.stdout
    assert "Findings of 3 researchers:" in done.stdout
    assert [line[:3] for line in done.stdout.splitlines() if line[:1].isdigit()] == ["1. ", "2. ", "3. "]
    assert (tmp_path / "real_model.db").exists()


def _read(text: str) -> str:
    """What a model reads in a labelled untrusted block: the data (the tags checked)."""
    if not text.startswith("<untrusted-data "):
        return text
    head, _, rest = text.partition("\n")
    data, _, tail = rest.rpartition("\n")
    assert tail == "</untrusted-data>" and 'note="' in head
    return data


def _neutral(body: dict[str, Any]) -> st.ModelRequest:
    """A Chat Completions request body back into the neutral request a policy reads."""
    names: dict[str, str] = {}
    messages = []
    for m in body["messages"]:
        if m["role"] == "assistant":
            calls = tuple(st.ToolCall(id=c["id"], name=c["function"]["name"],
                                      arguments=json.loads(c["function"]["arguments"]))
                          for c in m.get("tool_calls", ()))
            names.update({c.id: c.name for c in calls})
            messages.append(st.ModelMessage(role="assistant", content=m["content"] or "",
                                            tool_calls=calls))
        elif m["role"] == "tool":
            messages.append(st.ModelMessage(role="tool", content=_read(m["content"]),
                                            tool_call_id=m["tool_call_id"],
                                            name=names.get(m["tool_call_id"])))
        else:
            messages.append(st.ModelMessage(role=m["role"], content=_read(m["content"])))
    task = next(m.content for m in messages if m.role == "user")
    return st.ModelRequest(session_id="wire", role="root" if task.startswith("Survey") else
                           "researcher", model=body["model"], messages=tuple(messages))


def model_server(policy: Any) -> Any:
    ids = itertools.count(1)

    def respond(seen: Seen) -> Reply:
        reply = policy(st.ScriptTurn(_neutral(seen.body)))
        chunks = [openai_chunk({"role": "assistant", "content": reply.content})]
        for i, call in enumerate(reply.tool_calls):
            chunks.append(openai_chunk({"tool_calls": [{
                "index": i, "id": f"call_{next(ids)}", "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}]}))
        chunks.append(openai_chunk({}, finish="tool_calls" if reply.tool_calls else "stop"))
        chunks.append(openai_chunk(usage={"prompt_tokens": 100, "completion_tokens": 20,
                                          "total_tokens": 120}))
        return openai_sse(chunks)

    return respond


def test_the_openai_compatible_form_runs_the_tree_through_the_sdk_against_a_local_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    ex = example()
    with LLMServer(responder=model_server(ex.tree.policy)) as server:
        code = ex.main(["--provider", "openai-compatible", "--model", "llama3.2",
                        "--base-url", server.url + "/v1", "--db", str(tmp_path / "tree.db"),
                        "--workspace", str(tmp_path / "ws")])
        seen = list(server.seen)
    out = capsys.readouterr().out

    assert code == 0, out
    assert "on openai-compatible" in out and "Findings of 3 researchers:" in out
    assert "the tree spent 1200 in / 240 out tokens in 12 model runs, $0.0000" in out  # local: free
    assert len(seen) == 12  # root: 3 turns; 3 researchers: 3 turns each
    assert {s.body["model"] for s in seen} == {"llama3.2"}
    root_tools = {t["function"]["name"] for t in seen[0].body["tools"]}
    assert {"spawn_session", "read_file", "append_note"} <= root_tools
    assert "wait_for_children" not in root_tools  # offered once the root has children
    assert any("wait_for_children" in {t["function"]["name"] for t in s.body["tools"]}
               for s in seen[1:])
    assert seen[0].body["messages"][0]["role"] == "system"
    assert len((tmp_path / "ws" / "notes.log").read_text().splitlines()) == 3


def test_a_real_provider_without_its_key_or_model_is_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ex = example()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SystemExit, match="OPENAI_API_KEY"):
        ex.make_provider("openai", "gpt-4o-mini", None)
    with pytest.raises(SystemExit, match="needs --model"):
        ex.make_provider("anthropic", None, None)
    with pytest.raises(SystemExit, match="needs --base-url"):
        ex.make_provider("openai-compatible", "llama3.2", None)
