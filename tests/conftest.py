"""Shared fixtures. Every test fails if it leaves a sessiontree thread running."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_OURS = ("SessionActor-", "SchedulerActor-", "sessiontree-")


def _our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(_OURS) and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(_our_threads())
    yield
    leaked = []
    for thread in _our_threads():
        if thread in before:
            continue
        thread.join(timeout=5.0)  # an actor finishing its last message
        if thread.is_alive():
            leaked.append(thread.name)
    if leaked:
        pytest.fail(f"threads leaked by the test: {leaked}")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"
