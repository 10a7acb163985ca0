"""The runtime's security verbs: capability tokens and consent for cloud providers.

:class:`~sessiontree._runtime.Runtime` inherits them. Only the host (through these) and
an operator (the CLI, on a store with no live host) change tokens or consent; nothing a
model writes -- tool results, files, children's summaries -- reaches these verbs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sessiontree._errors import InvalidInput
from sessiontree._reasons import Reason
from sessiontree._views import CapabilityTokenInfo, token_info
from sessiontree.actors.context import RuntimeContext
from sessiontree.persistence import capabilities as rows
from sessiontree.persistence.store import Store
from sessiontree.persistence.tx import Tx
from sessiontree.supervision import consent


def check_grants(
    capabilities: Iterable[str], expire_at: Any, consent_to: Iterable[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the host gives a root, checked: capabilities (non-empty strings, no
    duplicates), their expiry (a clock time or None) and the providers consented to.
    Raises :class:`InvalidInput`."""
    if isinstance(capabilities, str) or isinstance(consent_to, str):
        raise InvalidInput("capabilities and consent are lists of strings, not one string")
    caps, names = tuple(dict.fromkeys(capabilities)), tuple(dict.fromkeys(consent_to))
    if not all(isinstance(c, str) and c.strip() and len(c) <= 4096 for c in caps):
        raise InvalidInput("capabilities must be non-empty strings")
    if not all(isinstance(p, str) and p for p in names):
        raise InvalidInput("consent must name providers (non-empty strings)")
    if not isinstance(expire_at, int | float | None) or isinstance(expire_at, bool):
        raise InvalidInput("capabilities_expire_at must be a clock time (float) or None")
    return caps, names


def issue_root(
    tx: Tx, session_id: str, capabilities: tuple[str, ...], expires_at: float | None,
    consent_to: tuple[str, ...],
) -> None:
    """What the host gives a new root: its tokens and its tree's up-front consent."""
    rows.issue(tx, session_id, [(c, None, expires_at) for c in capabilities])
    for provider in consent_to:
        consent.grant(tx, session_id, provider, "host")


class RuntimeSecurity:
    """Token and consent verbs (see the module docstring)."""

    _store: Store
    _ctx: RuntimeContext

    def _check_open(self) -> None:  # pragma: no cover - Runtime's
        raise NotImplementedError

    def capability_tokens(self, session_id: str) -> list[CapabilityTokenInfo]:
        """Every token issued to the session (live or not), in issue order. Raises
        :class:`UnknownSession`."""
        self._store.session(session_id)
        now = self._store.clock.now()
        return [token_info(t, now) for t in rows.read_tokens(self._store, session_ids=[session_id])]

    def revoke(self, token_id: str, reason: str = Reason.REVOKED_BY_HOST.value) -> list[str]:
        """Revoke a token and every token derived from it (children's, grandchildren's...);
        return the ids revoked. Takes effect at the next gate decision of each affected
        session; each is an ``FR-EVT-SESS-CAPABILITY-REVOKED`` event. Idempotent.
        Raises :class:`InvalidInput` for an unknown token."""
        self._check_open()
        if not isinstance(token_id, str) or not isinstance(reason, str) or not reason:
            raise InvalidInput("token_id and reason must be strings")
        with self._store.transaction() as tx:
            return [t.id for t in rows.revoke(tx, token_id, reason)]

    def _consent_root(self, session_id: str, provider: str | None) -> tuple[str, str]:
        session = self._store.session(session_id)
        return session.root_id, provider or session.provider

    def grant_consent(self, session_id: str, provider: str | None = None) -> list[str]:
        """Consent to sending the data of ``session_id``'s tree to ``provider`` (default:
        the session's). Sessions of the tree waiting for it are queued again; returns
        their ids."""
        self._check_open()
        root_id, name = self._consent_root(session_id, provider)
        with self._store.transaction() as tx:
            return consent.grant(tx, root_id, name, "host")

    def deny_consent(self, session_id: str, provider: str | None = None) -> list[str]:
        """Refuse ``provider`` for the tree: its sessions waiting for it fail with
        ``consent_denied`` (returned), and so does any later run on it."""
        self._check_open()
        root_id, name = self._consent_root(session_id, provider)
        with self._store.transaction() as tx:
            return consent.deny(tx, root_id, name, "host")

    def revoke_consent(self, session_id: str, provider: str | None = None) -> None:
        """Withdraw the tree's consent for ``provider``: calls already running finish;
        nothing new is dispatched to it (sessions then wait in ``awaiting_consent``)."""
        self._check_open()
        root_id, name = self._consent_root(session_id, provider)
        with self._store.transaction() as tx:
            consent.revoke(tx, root_id, name, "host")

    def consents(self, session_id: str) -> dict[str, Any]:
        """The tree's consent decisions: provider -> granted | denied | revoked."""
        return dict(rows.read_consents(self._store, self._store.session(session_id).root_id))
