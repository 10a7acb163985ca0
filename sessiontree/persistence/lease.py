"""The owner lease: one live process per store.

A runtime holds the lease while open and refreshes its heartbeat; another process that
opens the same store is refused (:class:`StoreInUse`) while the lease is fresh. A lease
is stale when its heartbeat is older than the TTL, or -- on the same host -- at once
when its process is gone (so recovery after ``kill -9`` need not wait out the TTL).
Lease times are wall-clock, never the injected clock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass

from sessiontree._errors import StoreInUse
from sessiontree.persistence import workspace
from sessiontree.persistence.store import Store


def _proc_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int, proc_start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if proc_start:  # pid reused by another process?
        return _proc_start(pid) == proc_start
    return True


@dataclass(frozen=True)
class LeaseHolder:
    owner_id: str
    pid: int
    host: str
    heartbeat_age: float


def holder(store: Store, ttl: float) -> LeaseHolder | None:
    """The live holder of the store's lease, or None if it is free or stale."""
    with store._reading() as m:
        row = m.owner.get_or_none(m.owner.id == 1)
    if row is None:
        return None
    age = time.time() - row.heartbeat_at
    if row.host == socket.gethostname():
        if row.pid == os.getpid() or not _alive(row.pid, row.proc_start):
            return None if row.pid != os.getpid() else LeaseHolder(
                row.owner_id, row.pid, row.host, age)
        return LeaseHolder(row.owner_id, row.pid, row.host, age)
    return LeaseHolder(row.owner_id, row.pid, row.host, age) if age < ttl else None


def acquire(store: Store, owner_id: str, ttl: float) -> None:
    with store.transaction() as tx:
        current = holder(store, ttl)
        if current is not None and current.owner_id != owner_id:
            raise StoreInUse(
                f"store {store.path} is in use by process {current.pid} on {current.host} "
                f"(heartbeat {current.heartbeat_age:.1f}s ago); close it there first",
                pid=current.pid, host=current.host, owner_id=current.owner_id,
            )
        now = time.time()
        pid = os.getpid()
        tx.m.owner.delete().execute()
        tx.m.owner.insert(
            id=1, owner_id=owner_id, pid=pid, host=socket.gethostname(),
            proc_start=_proc_start(pid), acquired_at=now, heartbeat_at=now,
        ).execute()
        # Path leases live as long as the host that took them: a new owner frees them.
        workspace.free_other_owners(tx, owner_id)


def heartbeat(store: Store, owner_id: str) -> bool:
    """Refresh the heartbeat; False if this owner no longer holds the lease."""
    with store.transaction() as tx:
        return bool(
            tx.m.owner.update(heartbeat_at=time.time())
            .where(tx.m.owner.owner_id == owner_id)
            .execute()
        )


def release(store: Store, owner_id: str) -> None:
    with contextlib.suppress(Exception), store.transaction() as tx:
        tx.m.owner.delete().where(tx.m.owner.owner_id == owner_id).execute()
