"""The base of every action type and its registry. Actions run in a Celery task after the
firing committed (never inside the engine: durable_rules swallows exceptions raised there);
an exception from run() is recorded on the firing and shown in admin.

Each type names two shapes: its options (what its form validates and the rule stores, less
the "id") and its result (what run() returns, stored on the firing's outcome)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

from triggers.registry import RegisteredType, Registry

if TYPE_CHECKING:
    from triggers.models import TriggerFiring

OptionsT = TypeVar("OptionsT", bound=Mapping[str, object])
ResultT = TypeVar("ResultT", bound=Mapping[str, object])


class ActionError(Exception):
    """An action could not do its work; the message is shown on the firing."""


class ActionFailure(TypedDict):
    """An entry of TriggerFiring.outcome["actions"] for the action that stopped the run."""

    id: object  # the entry's "id" as stored, even when no type has it
    error: str
    traceback: str


class ActionType(RegisteredType, Generic[OptionsT, ResultT]):
    # True when run() only reads and writes the database (what it enqueues goes after
    # commit) and calls no network service: such actions run inside the firing's
    # transaction, and right after the evaluation that fired them. A network call (a
    # webhook) must never hold a transaction open, so the default is False.
    database_only = False

    def options(self, stored: Mapping[str, Any]) -> OptionsT:
        """The options of an entry that was validated when the rule was saved, in this type's
        shape: values as stored, the "id" and unknown keys left out. No query, no check."""
        raise NotImplementedError

    def clean_options(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """The form's check; valid options come back in this type's shape, with the id."""
        cleaned, errors = super().clean_options(options)
        if errors:
            return cleaned, errors
        return {"id": self.id, **self.options(cleaned)}, errors

    def run(self, options: OptionsT, *, firing: TriggerFiring, contact_id: int) -> ResultT:
        """Do the work; returns what happened (stored on the firing)."""
        raise NotImplementedError

    def run_entry(
        self, entry: Mapping[str, Any], *, firing: TriggerFiring, contact_id: int
    ) -> ResultT:
        """Run a rule's stored entry ({"id": ..., **options})."""
        return self.run(self.options(entry), firing=firing, contact_id=contact_id)


class ActionRegistry(Registry[ActionType[Any, Any]]):
    kind = "action"


actions = ActionRegistry()
