"""Identifiers: short, unique (80 random bits from the OS)."""

from __future__ import annotations

import os
import threading
import uuid

_BYTES = 10
_POOL = 4096  # OS randomness read at once: one system call per ~400 ids
_lock = threading.Lock()
_pool = b""
_pos = 0


def _forget_pool() -> None:
    """In a forked child: never hand out the parent's bytes again."""
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def _random(size: int) -> bytes:
    """``size`` random bytes from the pool (refilled from ``os.urandom``). Each call of
    ``os.urandom`` lets the GIL go, and taking it back can wait for another thread: one
    a model_run was measurable."""
    global _pool, _pos
    with _lock:
        if _pos + size > len(_pool):
            _pool, _pos = os.urandom(_POOL), 0
        chunk = _pool[_pos : _pos + size]
        _pos += size
    return chunk


def new_id(prefix: str) -> str:
    """``prefix_`` and 20 hex digits (80 random bits from the pool)."""
    return f"{prefix}_{_random(_BYTES).hex()}"


def new_uuid() -> uuid.UUID:
    """A random (version 4) UUID from the pool, as ``uuid.uuid4()`` makes from the OS."""
    return uuid.UUID(bytes=_random(16), version=4)
