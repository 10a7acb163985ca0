"""The research tree against a real model: OpenAI, Anthropic, or any OpenAI-compatible
server (Ollama, vLLM, llama.cpp, LM Studio).

The same tree as ``research_tree.py`` -- a root session spawns one researcher per file
of the bundled workspace; each reads its file (read-only tool), appends a line to
``notes.log`` (idempotent tool) and answers with one finding; the root waits for them
and composes the answer -- with the model's instructions in the prompts instead of a
script (each researcher's instructions travel in the task its root gives it). Run it::

    python examples/real_model.py                      # no model: the scripted provider
    OPENAI_API_KEY=... python examples/real_model.py --provider openai --model gpt-4o-mini
    ANTHROPIC_API_KEY=... python examples/real_model.py --provider anthropic \\
        --model claude-sonnet-4-20250514
    ollama pull llama3.2 && python examples/real_model.py --provider openai-compatible \\
        --model llama3.2 --base-url http://localhost:11434/v1

Keys come from the usual environment variables (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``); a local server needs none. A priced model gets a cost budget
(``--max-cost``, dollars); every run also has a token and model-run budget, so a model
that loops cannot spend without bound.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sessiontree as st
from sessiontree.console import demo as tree  # the research tree: tools, workspace, policy

PROVIDERS = ("scripted", "openai", "anthropic", "openai-compatible")
KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}

ROOT_SYSTEM = """You coordinate a small research team. The workspace holds these notes files: \
{files}.
1. Call spawn_session once per file, all in one turn, each with role "researcher", \
capabilities ["fs.read", "fs.write"], budget {budget} \
and this task, with NAME replaced: "file=NAME: read it with read_file, then call \
append_note once with one line 'NAME: <its most important finding>', then answer with \
that line and nothing else."
2. Then call wait_for_children (no arguments).
3. Then answer with "Findings of N researchers:" followed by one numbered line per \
researcher with its summary. Do not call any other tool."""

def make_provider(name: str, model: str | None, base_url: str | None) -> Any:
    """The provider for ``--provider``; raises SystemExit with a message a person can act on."""
    if name == "scripted":
        return st.ScriptedProvider(tree.policy)
    if not model:
        raise SystemExit(f"--provider {name} needs --model")
    if name in KEYS and not base_url and not os.environ.get(KEYS[name]):
        raise SystemExit(f"--provider {name} needs {KEYS[name]} in the environment")
    if name == "openai":
        return st.OpenAIProvider(model, base_url=base_url)
    if name == "anthropic":
        return st.AnthropicProvider(model, base_url=base_url)
    if not base_url:
        raise SystemExit("--provider openai-compatible needs --base-url "
                         "(Ollama: http://localhost:11434/v1)")
    return st.OpenAIProvider(model, base_url=base_url, name="openai-compatible")


def run(
    provider: Any, db: str | Path, workspace: str | Path | None = None,
    children: int = tree.DEFAULT_CHILDREN, max_cost: float = 0.5,
    echo: Callable[[str], None] = print,
) -> st.SessionInfo:
    """Run the research tree once on ``provider``; return the root once it has ended."""
    files = tree.topics()[:children] or tree.topics()
    child: dict[str, Any] = {"model_runs": tree.CHILD_RUNS, "tokens": tree.CHILD_TOKENS}
    budget: dict[str, Any] = {"model_runs": (children + 1) * tree.CHILD_RUNS,
                              "tokens": (children + 1) * tree.CHILD_TOKENS}
    price = provider.price("default") if callable(getattr(provider, "price", None)) else None
    if price is not None and price != st.Price(input_per_mtok=0, output_per_mtok=0):
        # A child's cost must be carved explicitly: one that names no cost would get all
        # of what the root has left.
        budget["cost"] = max_cost
        child["cost"] = round(max_cost / (children + 1), 6)
    system = ROOT_SYSTEM.format(files=", ".join(files), budget=json.dumps(child))
    with st.Runtime.open(db, providers=[provider], tools=tree.TOOLS,
                         limits=tree.limits(children)) as rt:
        ws = tree.prepare_workspace(workspace)
        root = rt.create_session(
            tree.root_task(children), role="root", system=system, budget=budget,
            capabilities=["session.spawn", "fs.read", "fs.write"], workspace=ws,
            max_children=children, meta={"demo": "real_model"},
            # running this script with --provider is the consent to send the tree's
            # prompts there (a local server needs none; a cloud one would wait for it)
            consent=[provider.name],
        )
        echo(f"root {root} on {provider.name} in {db}, workspace {ws}")
        return rt.wait(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--provider", choices=PROVIDERS, default=None,
                        help="default: scripted (offline)")
    parser.add_argument("--model", help="the model name, e.g. gpt-4o-mini, llama3.2")
    parser.add_argument("--base-url", help="an OpenAI-compatible server's URL (or a proxy's)")
    parser.add_argument("--db", default="real_model.db", help="the store (default real_model.db)")
    parser.add_argument("--workspace", help="scratch copy of the workspace (default: a temp dir)")
    parser.add_argument("--children", type=int, default=tree.DEFAULT_CHILDREN)
    parser.add_argument("--max-cost", type=float, default=0.5,
                        help="dollars the whole tree may spend, when the model is priced")
    args = parser.parse_args(argv)
    provider = make_provider(args.provider or "scripted", args.model, args.base_url)
    root = run(provider, args.db, args.workspace, args.children, args.max_cost)
    spent = root.spent  # the whole tree: the root and its children
    print(tree.answer_of(root))
    cost = f"${spent.cost:.4f}" + (" + unpriced runs" if spent.unpriced_runs else "")
    print(f"[{root.state}; the tree spent {spent.input_tokens} in / {spent.output_tokens} out "
          f"tokens in {spent.model_runs} model runs, {cost}]")
    return 0 if root.state == "completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
