"""Engine errors for fault injection (``sessiontree.testing``): what a real full disk
or a real lock looks like to the store, made here so that only ``persistence`` names
the engine's exception types."""

from __future__ import annotations

import sqlite3


def disk_full_error() -> Exception:
    """The error SQLite raises when the disk is full at a commit."""
    return sqlite3.OperationalError("database or disk is full")
