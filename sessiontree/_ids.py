"""Identifiers: short, unique (80 random bits from the OS)."""

from __future__ import annotations

import os
import threading

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


def new_id(prefix: str) -> str:
    """``prefix_`` and 20 hex digits. The random bytes come from ``os.urandom`` a pool
    at a time (each call of it can let another thread take the GIL: one a model_run was
    measurable)."""
    global _pool, _pos
    with _lock:
        if _pos + _BYTES > len(_pool):
            _pool, _pos = os.urandom(_POOL), 0
        chunk = _pool[_pos : _pos + _BYTES]
        _pos += _BYTES
    return f"{prefix}_{chunk.hex()}"
