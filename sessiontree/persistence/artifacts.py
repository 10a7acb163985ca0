"""Content addressing: canonical JSON bytes, blake3 hashes, and the message chain."""

from __future__ import annotations

import json
from typing import Any

import blake3


def canonical_bytes(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8, no NaN. Equal values, equal bytes.

    A string holding a lone surrogate (``'\\ud800'``, which UTF-8 cannot encode) makes
    the whole value fall back to ASCII, with ``\\uXXXX`` escapes: still deterministic,
    and lossless -- JSON round-trips the surrogate. Raises ``ValueError``/``TypeError``
    for a value that is not JSON (see ``sessiontree._jsonsafe`` for values from outside).
    """
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        ).encode("ascii")


def content_hash(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def chain_hash(prev_chain_hash: str, artifact_hash: str) -> str:
    """``blake3(prev_chain_hash + artifact_hash)`` over the hex strings; genesis prev is ''."""
    return blake3.blake3((prev_chain_hash + artifact_hash).encode("ascii")).hexdigest()
