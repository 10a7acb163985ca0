"""Identifiers: short, unique (80 random bits); no global state."""

from __future__ import annotations

import os


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(10).hex()}"
