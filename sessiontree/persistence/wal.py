"""Committed transactions in a WAL that SQLite will not replay.

SQLite replays a ``-wal`` file up to its first frame that fails its checksum (or not at
all when the WAL header is damaged) and silently ignores the rest, so a corrupt WAL
loses committed transactions without a word. :func:`unreplayable` finds them: it reads
the frame headers of the ``-wal`` file *before* SQLite touches it, asks SQLite how many
frames it accepted (``PRAGMA wal_checkpoint``), and reports every commit frame of the
current WAL generation (same salts as the header) past that point.

WAL format (https://www.sqlite.org/fileformat2.html#walformat): a 32-byte header
(magic, version, page size, checkpoint sequence, salt-1, salt-2, checksum), then frames
of a 24-byte header (page number, database size after commit -- non-zero only on a
commit frame --, salt-1, salt-2, checksum) and one page. All header fields big-endian.

SQLite drops those frames for good when the store is next checkpointed (at the latest
when its last connection closes), so the damaged ``-wal`` is first copied aside
(:func:`keep_copy`, ``<store>-wal.unreplayable``); while such a copy exists every open
reports it again, until an operator has looked at it and deleted it.

A process killed *while writing* its commit frame can leave that one frame torn: SQLite
writes a frame's header and its page in two writes, and a kill between them leaves the
header (this generation's salts, the commit mark) over whatever page the file held
there. That transaction's COMMIT had not returned, so it was never reported committed;
:func:`unreplayable` does not count it. Its signature is exact (:func:`scan` checks the
last transaction's checksums): the only transaction lost is the generation's last, and
its first frame to fail the checksum is its commit frame. The price: damage confined to
the last frame of the WAL is not reported either.
"""

from __future__ import annotations

import glob
import os
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

_MAGIC = (0x377F0682, 0x377F0683)
_HEADER = 32
_FRAME_HEADER = 24


@dataclass(frozen=True)
class WalScan:
    """What the ``-wal`` file held before the store was opened."""

    salts: tuple[int, int]
    commits: tuple[int, ...]  # 0-based indexes of this generation's commit frames
    frames: int  # frames of this generation in the file
    header_ok: bool
    # The generation's last transaction fails its checksum at its commit frame and
    # nowhere before it: the signature of a writer killed while writing that frame.
    torn_commit: bool = False


def _checksum(data: bytes, s0: int, s1: int, big: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data``, continuing from ``(s0, s1)``."""
    words = struct.unpack(f"{'>' if big else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _torn_commit(fh: BinaryIO, header: bytes, commits: list[int], page_size: int) -> bool:
    """Does the last transaction of ``commits`` fail its checksum first at its commit
    frame? Checked from the frame before it (whose stored checksum is the running one if
    SQLite accepted it), so only that transaction's frames are read."""
    if not commits:
        return False
    big = struct.unpack(">I", header[:4])[0] == _MAGIC[1]
    frame = _FRAME_HEADER + page_size
    first = commits[-2] + 1 if len(commits) > 1 else 0
    if first == 0:
        s0, s1 = struct.unpack(">2I", header[24:32])
    else:
        fh.seek(_HEADER + (first - 1) * frame + 16)
        s0, s1 = struct.unpack(">2I", fh.read(8))
    for index in range(first, commits[-1] + 1):
        fh.seek(_HEADER + index * frame)
        data = fh.read(frame)
        if len(data) < frame:
            return False
        s0, s1 = _checksum(data[:8], s0, s1, big)
        s0, s1 = _checksum(data[_FRAME_HEADER:], s0, s1, big)
        if (s0, s1) != struct.unpack(">2I", data[16:24]):
            return index == commits[-1]
    return False  # the whole transaction checks: not torn


def scan(db_path: str) -> WalScan | None:
    """Read the frame headers of ``db_path``'s ``-wal``; None if there is no WAL worth
    reading (missing, or no frame)."""
    try:
        with open(db_path + "-wal", "rb") as fh:
            header = fh.read(_HEADER)
            if len(header) < _HEADER:
                return None
            magic, version, page_size, _seq, salt1, salt2 = struct.unpack(">6I", header[:24])
            sane = magic in _MAGIC and version == 3007000 and page_size in _PAGE_SIZES
            size = os.fstat(fh.fileno()).st_size
            if not sane:
                return WalScan((salt1, salt2), (), max(0, size - _HEADER), header_ok=False)
            frame = _FRAME_HEADER + page_size
            commits: list[int] = []
            frames = 0
            for index in range((size - _HEADER) // frame):
                fh.seek(_HEADER + index * frame)
                head = fh.read(_FRAME_HEADER)
                if len(head) < _FRAME_HEADER:
                    break
                _page, db_size, f1, f2 = struct.unpack(">4I", head[:16])
                if (f1, f2) != (salt1, salt2):
                    continue  # a frame of an earlier generation (or a damaged header)
                frames = index + 1
                if db_size:
                    commits.append(index)
            torn = _torn_commit(fh, header, commits, page_size)
    except OSError:
        return None
    if not frames:
        return None
    return WalScan((salt1, salt2), tuple(commits), frames, header_ok=True, torn_commit=torn)


_PAGE_SIZES = frozenset(2**n for n in range(9, 17))


def unreplayable(
    db_path: str, before: WalScan | None, accepted_frames: Callable[[], int | None]
) -> str | None:
    """Describe the committed transactions SQLite dropped from the WAL, or None.

    ``before`` is :func:`scan` taken before the store was opened; ``accepted_frames``
    asks the open connection how many frames SQLite accepted. If the WAL was restarted
    meanwhile (another process wrote), no verdict is given.
    """
    if before is None:
        return None
    accepted = accepted_frames()
    if accepted is None or accepted < 0:
        return None
    again = scan(db_path)
    if again is not None and again.salts != before.salts:
        return None  # another writer restarted the WAL since: nothing to compare
    if not before.header_ok:
        return (f"the WAL header of {db_path}-wal is damaged: SQLite ignored its "
                f"{before.frames} bytes of frames, and every transaction in them")
    lost = [i for i in before.commits if i >= accepted]
    if not lost or (lost == [before.frames - 1] and before.torn_commit):
        return None  # nothing lost, or only a commit its writer died writing (see above)
    return (f"{db_path}-wal holds {len(lost)} committed transaction(s) that SQLite cannot "
            f"replay: it accepted {accepted} of {before.frames} frames (frame {accepted + 1} "
            "fails its checksum); those transactions are lost")


KEPT_SUFFIX = "-wal.unreplayable"


def keep_copy(db_path: str) -> str | None:
    """Copy ``db_path``'s ``-wal`` aside, before SQLite discards what it cannot replay;
    return the copy's path (None if it could not be made)."""
    target = db_path + KEPT_SUFFIX
    n = 1
    while os.path.exists(target):
        n += 1
        target = f"{db_path}{KEPT_SUFFIX}.{n}"
    try:
        shutil.copy2(db_path + "-wal", target)
    except OSError:
        return None
    return target


def kept_copies(db_path: str) -> list[str]:
    """Damaged WALs of this store kept by an earlier open (:func:`keep_copy`)."""
    return sorted(glob.glob(glob.escape(db_path + KEPT_SUFFIX) + "*"))
