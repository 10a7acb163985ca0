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

from typing import Any

import peewee as pw

from sessiontree.persistence.models import Models


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
