"""Schema upgrades: a store written by an older sessiontree gains what is new.

Every change so far is additive, so an upgrade is: new tables (``create_tables`` makes
them) and new columns, each added with its default by :func:`add_missing_columns`.

- version 2: sessions gained their supervision and conversation columns (``shutdown``,
  ``significant``, ``auto_shutdown``, ``child_max_restarts``, ``child_period``,
  ``child_restart_log``, ``keep_open``); jobs gained ``input_hash`` and ``input_seq``.
- version 3: the control tables ``command`` and ``pause`` (``persistence.commands``).
- version 4: two indexes are dropped (:data:`RETIRED_INDEXES`): the event table's
  unique one on ``event_id`` (a time range is found on the primary key now:
  ``StoreReads._ids_at``) and the session table's on ``state`` (a tree's sessions in a
  state are found through ``root_id``).
"""

from __future__ import annotations

import logging
from typing import Any

import peewee as pw

from sessiontree._errors import CorruptStore, SchemaVersionError
from sessiontree.persistence.models import Models

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
"""Bumped on every schema change; a store with a higher one is refused, a lower one is
upgraded at open (:func:`bring_up_to_date`)."""


def bring_up_to_date(db: Any, models: Models, path: str) -> None:
    """Stamp a new store with :data:`SCHEMA_VERSION`, upgrade an older one, refuse a
    newer one (:class:`SchemaVersionError`). Runs inside the caller's transaction,
    after the tables were created."""
    row = models.meta.get_or_none(models.meta.key == "schema_version")
    if row is None:
        models.meta.insert(key="schema_version", value=str(SCHEMA_VERSION)).execute()
        return
    try:
        version = int(row.value)
    except ValueError:
        raise CorruptStore(f"bad schema_version {row.value!r} in {path}") from None
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"store {path} has schema version {version}; this sessiontree reads up to "
            f"{SCHEMA_VERSION}: upgrade sessiontree", found=version, supported=SCHEMA_VERSION)
    if version < SCHEMA_VERSION:  # additive upgrades
        added = add_missing_columns(db, models)
        added += [f"-{n}" for n in drop_retired_indexes(db)]
        models.meta.update(value=str(SCHEMA_VERSION)).where(
            models.meta.key == "schema_version").execute()
        log.info("store %s upgraded to schema %d: %s", path, SCHEMA_VERSION,
                 ", ".join(added) or "nothing to add")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def add_missing_columns(db: Any, models: Models) -> list[str]:
    """Add every column a model declares and its table lacks (with the field's default,
    so existing rows read as if written with it). Returns ``table.column`` names added.
    Runs inside the caller's transaction."""
    added = []
    types = db._field_types  # the engine's names for peewee's field types
    for model in models.all():
        table = model._meta.table_name
        have = {c.name for c in db.get_columns(table)}
        for field in model._meta.sorted_fields:
            if field.column_name in have:
                continue
            ddl = f'"{field.column_name}" {types.get(field.field_type, field.field_type)}'
            if field.default is not None and not callable(field.default):
                ddl += f" NOT NULL DEFAULT {_literal(field.default)}"
            elif not field.null:
                raise pw.OperationalError(f"cannot add {table}.{field.column_name}: no default")
            db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN {ddl}')
            added.append(f"{table}.{field.column_name}")
    return added


# Indexes an older schema made that nothing reads any more: each only cost its pages
# every commit.
RETIRED_INDEXES = (("event", "eventrow_event_id"), ("session", "sessionrow_state"))


def drop_retired_indexes(db: Any) -> list[str]:
    """Drop every index of :data:`RETIRED_INDEXES` (table, index) the store has; return their names.
    Runs inside the caller's transaction."""
    dropped = [name for table, name in RETIRED_INDEXES
               if name in {index.name for index in db.get_indexes(table)}]
    for name in dropped:
        db.execute_sql(f'DROP INDEX "{name}"')
    return dropped
