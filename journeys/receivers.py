"""What journeys does when segments or crm report something. Connected in
JourneysConfig.ready(). Both signals are sent after the sender's transaction commits."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from segments.signals import membership_changed


@receiver(membership_changed, dispatch_uid="journeys.segment_entry")
def on_segment_entered(
    sender: Any, *, segment_id: int, entered_ids: list[int], **kwargs: Any
) -> None:
    """Contacts entering a journey's entry segment enter the journey, set-based. Only those
    announced while the journey takes contacts: members from before it was enabled (or
    before the segment became its entry) were announced then, so they never flood in."""
    from journeys.entry import enrollments_start
    from journeys.models import Journey

    if not entered_ids:
        return
    for journey in Journey.objects.filter(
        entry_segment_id=segment_id, enabled=True, status=Journey.Status.ACTIVE
    ).exclude(current_version=None):
        enrollments_start(
            journey=journey,
            entrants=[(contact_id, {}) for contact_id in entered_ids],
            source="segment",
        )
