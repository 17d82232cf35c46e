"""The base of every action type and its registry. Actions run in a Celery task after the
firing committed (never inside the engine: durable_rules swallows exceptions raised there);
an exception from run() is recorded on the firing and shown in admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from triggers.registry import RegisteredType, Registry

if TYPE_CHECKING:
    from triggers.models import TriggerFiring


class ActionError(Exception):
    """An action could not do its work; the message is shown on the firing."""


class ActionType(RegisteredType):
    # True when run() only reads and writes the database (what it enqueues goes after
    # commit) and calls no network service: such actions run inside the firing's
    # transaction, and right after the evaluation that fired them. A network call (a
    # webhook) must never hold a transaction open, so the default is False.
    database_only = False

    def run(
        self, options: dict[str, Any], *, firing: TriggerFiring, contact_id: int
    ) -> dict[str, Any]:
        """Do the work; returns what happened (stored on the firing)."""
        raise NotImplementedError


class ActionRegistry(Registry[ActionType]):
    kind = "action"


actions = ActionRegistry()
