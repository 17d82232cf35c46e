"""The trigger action `start_journey`: a rule's match enrolls the contact in a journey.
Registered into triggers' action registry from here (JourneysConfig.ready imports this
module), since triggers is a layer below journeys and must not import it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms

from crm.models import Event
from triggers.actions.base import ActionError, ActionType, actions

if TYPE_CHECKING:
    from triggers.models import TriggerFiring


class StartJourneyOptions(TypedDict):
    """e.g. {"journey": "browse-follow-up"}"""

    journey: str  # a journey's slug


class StartJourneyResult(TypedDict):
    journey: str
    enrollment_id: int | None  # None when the contact did not enter
    skipped: str  # why it did not enter, else ""


class JourneySlugField(forms.SlugField):
    def validate(self, value: Any) -> None:
        from journeys.models import Journey

        super().validate(value)
        if value and not Journey.objects.filter(slug=value).exists():
            raise forms.ValidationError(f"no journey with the slug {value!r}.")


class StartJourneyForm(forms.Form):
    journey = JourneySlugField(help_text="A journey's slug, e.g. browse-follow-up")


# Conditions whose event is one the contact did: the entry event is the latest of these.
# event_absent names an event that did not happen, so it is no entry event.
_ENTRY_CONDITIONS = ("event_count",)


def entry_event_types(conditions: list[Mapping[str, Any]]) -> list[str]:
    """The event types a rule's conditions name as done by the contact."""
    return sorted(
        {
            str(entry["event"])
            for entry in conditions
            if entry.get("id") in _ENTRY_CONDITIONS and entry.get("event")
        }
    )


def entry_properties(firing: TriggerFiring) -> dict[str, Any]:
    """The properties of the firing's entry event: the contact's latest event at or before
    the firing, of the types the rule version's conditions name (any type when none)."""
    from triggers.models import TriggerRuleVersion

    snapshot = (
        TriggerRuleVersion.objects.filter(rule_id=firing.rule_id, version=firing.rule_version)
        .values_list("snapshot", flat=True)
        .first()
    )
    conditions = (snapshot or {}).get("conditions") or list(firing.rule.conditions or [])
    events = Event.objects.filter(contact_id=firing.contact_id, occurred_at__lte=firing.fired_at)
    types = entry_event_types(conditions)
    if types:
        events = events.filter(type__in=types)
    properties = events.order_by("-occurred_at", "-pk").values_list("properties", flat=True).first()
    return dict(properties) if isinstance(properties, Mapping) else {}


@actions.register
class StartJourney(ActionType[StartJourneyOptions, StartJourneyResult]):
    id = "start_journey"
    database_only = True
    label = "start the journey {journey}"
    form = StartJourneyForm

    def options(self, stored: Mapping[str, Any]) -> StartJourneyOptions:
        return StartJourneyOptions(journey=stored["journey"])

    def run(
        self, options: StartJourneyOptions, *, firing: TriggerFiring, contact_id: int
    ) -> StartJourneyResult:
        from journeys.entry import enrollments_start
        from journeys.models import Journey

        journey = Journey.objects.filter(slug=options["journey"]).first()
        if journey is None:
            raise ActionError(f"journey {options['journey']!r} no longer exists")
        result = enrollments_start(
            journey=journey,
            entrants=[(contact_id, entry_properties(firing))],
            source="trigger",
        )
        return {
            "journey": journey.slug,
            "enrollment_id": result.created_ids[0] if result.created_ids else None,
            "skipped": result.skip_reason(),
        }
