"""The store: one small interface (``Store``) over peewee; SQLite (WAL) by default.

Nothing outside this package writes SQL.
"""

from sessiontree.persistence.artifacts import canonical_bytes, chain_hash, content_hash
from sessiontree.persistence.engine import open_store
from sessiontree.persistence.migrate import SCHEMA_VERSION
from sessiontree.persistence.store import Store

__all__ = ["SCHEMA_VERSION", "Store", "canonical_bytes", "chain_hash", "content_hash", "open_store"]
