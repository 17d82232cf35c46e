"""What triggers does when crm or segments report something. Connected in
TriggersConfig.ready(). Both signals are sent after commit; the evaluation task is enqueued
after our own queue insert commits."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crm.signals import events_ingested
from segments.signals import membership_changed
from triggers.services.evaluation import contacts_queue
from triggers.services.rules import segment_watched


def _queue(contact_ids: list[int], source: str) -> None:
    from triggers.tasks import trigger_pending_evaluate

    if contacts_queue(contact_ids=contact_ids, source=source):
        trigger_pending_evaluate.delay_on_commit()


@receiver(events_ingested, dispatch_uid="triggers.events_ingested")
def on_events_ingested(sender: Any, *, contact_ids: list[int], **kwargs: Any) -> None:
    _queue(list(contact_ids), "events")


@receiver(membership_changed, dispatch_uid="triggers.membership_changed")
def on_membership_changed(
    sender: Any,
    *,
    segment_id: int,
    entered_ids: list[int],
    exited_ids: list[int],
    **kwargs: Any,
) -> None:
    if segment_watched(segment_id=segment_id):
        _queue([*entered_ids, *exited_ids], "segments")
