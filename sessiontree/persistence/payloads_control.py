"""Payload schemas of the control channel's events (``persistence.commands``); the
registry that names them is ``persistence.events``."""

from __future__ import annotations

from sessiontree.persistence.payloads import _Payload


class ControlSettled(_Payload):
    """An operator's command (``sessiontree pause|resume|cancel|...``, the console) was
    applied or refused by the host that holds the store; ``outcome`` says what it did or
    why not; ``delay`` is the seconds from written to settled."""

    command_id: str
    kind: str
    target: str
    subtree: bool
    by: str
    outcome: str
    delay: float
