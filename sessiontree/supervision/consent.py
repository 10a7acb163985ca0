"""The consent gate: a session's data goes to a cloud provider only with consent.

A provider is *local* (``provider.local`` true: it keeps data on this machine) or
*cloud*. Before a session's model_run is dispatched to a cloud provider, its root tree
must hold a ``granted`` consent record for that provider
(``persistence.capabilities``). Without one the run is not dispatched: its job is
cancelled and the session waits in ``awaiting_consent`` (no job, no thread), with
``FR-EVT-SESS-CONSENT-REQUESTED``. A ``denied`` record fails it with
``consent_denied``. Granting moves every session of the tree waiting for that provider
back to ``queued`` (a new job); denying fails them; revoking only stops what has not
been dispatched yet (running calls finish).

:func:`verdict` is the pure decision; :func:`admit`, :func:`grant`, :func:`deny` and
:func:`revoke` apply it inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any, Literal

from sessiontree._errors import InvalidInput
from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState
from sessiontree.actors.ending import end_session
from sessiontree.persistence import capabilities as rows
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.tx import Tx

Verdict = Literal["dispatch", "wait", "fail"]


def is_local(provider: Any) -> bool:
    """True only for a provider that says it is local; anything else counts as cloud."""
    return getattr(provider, "local", False) is True


def verdict(local: bool, consent: str | None) -> Verdict:
    """Dispatch, wait for consent, or fail (``consent`` as stored: granted, denied,
    revoked or None)."""
    if local or consent == "granted":
        return "dispatch"
    return "fail" if consent == "denied" else "wait"


def admit(tx: Tx, session: SessionRecord, job_id: str, attempt: int, provider: Any) -> bool:
    """True if the job may be dispatched; otherwise hold or fail the session (module
    docstring) in ``tx`` and return False."""
    if is_local(provider):
        return True
    decided = verdict(False, rows.consent_in(tx, session.root_id, session.provider))
    if decided == "dispatch":
        return True
    if decided == "fail":
        tx.set_job(job_id, JobState.FAILED, reason=Reason.CONSENT_DENIED.value)
        tx.event("FR-EVT-SESS-SCHED-FAILED", session.id, job_id,
                 {"attempt": attempt, "reason": Reason.CONSENT_DENIED.value})
        end_session(tx, session.id, SessionState.FAILED, Reason.CONSENT_DENIED)
        return False
    tx.set_job(job_id, JobState.CANCELLED, reason=Reason.CONSENT_REQUIRED.value)
    tx.event("FR-EVT-SESS-SCHED-CANCELLED", session.id, job_id,
             {"attempt": attempt, "reason": Reason.CONSENT_REQUIRED.value, "was_running": False})
    tx.set_state(session.id, SessionState.AWAITING_CONSENT, Reason.CONSENT_REQUIRED)
    tx.event("FR-EVT-SESS-CONSENT-REQUESTED", session.id, None,
             {"provider": session.provider, "root_id": session.root_id})
    return False


def _check(provider: str) -> str:
    if not isinstance(provider, str) or not provider:
        raise InvalidInput("a provider name is a non-empty str")
    return provider


def _waiting(tx: Tx, root_id: str, provider: str) -> list[SessionRecord]:
    return [s for s in tx.sessions_in((SessionState.AWAITING_CONSENT,), root_id)
            if s.provider == provider]


def grant(tx: Tx, root_id: str, provider: str, by: str) -> list[str]:
    """Consent for ``provider`` in the tree; return the sessions queued again."""
    rows.set_consent(tx, root_id, _check(provider), "granted", by)
    woken = []
    for s in _waiting(tx, root_id, provider):
        tx.set_state(s.id, SessionState.QUEUED, Reason.CONSENT_GRANTED)
        tx.enqueue(s.id)
        woken.append(s.id)
    return woken


def deny(tx: Tx, root_id: str, provider: str, by: str) -> list[str]:
    """Refuse ``provider`` for the tree; return the waiting sessions this failed."""
    rows.set_consent(tx, root_id, _check(provider), "denied", by)
    failed = []
    for s in _waiting(tx, root_id, provider):
        end_session(tx, s.id, SessionState.FAILED, Reason.CONSENT_DENIED)
        failed.append(s.id)
    return failed


def revoke(tx: Tx, root_id: str, provider: str, by: str) -> None:
    """Withdraw consent: nothing new is dispatched to ``provider`` for the tree."""
    rows.set_consent(tx, root_id, _check(provider), "revoked", by)
