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
    def run(
        self, options: dict[str, Any], *, firing: TriggerFiring, contact_id: int
    ) -> dict[str, Any]:
        """Do the work; returns what happened (stored on the firing)."""
        raise NotImplementedError


class ActionRegistry(Registry[ActionType]):
    kind = "action"


actions = ActionRegistry()
