"""Labelling raw hits in bulk, and what follows from the labels: one Response per delivery
and link (clicked) or per delivery (opened), labelled with the best label of its hits, and a
crm event (email_clicked, email_opened) when one becomes human. Scanner and machine hits
never become events, so rules, journeys and A/B statistics only ever see people.

One run takes up to TRACKING_CLASSIFY_BATCH_SIZE unprocessed hits (locked, skipping rows
another worker holds, on PostgreSQL), relabels every hit of their deliveries (a burst or a
honeypot hit that arrives later can change what an earlier hit was) and writes the changes
with a fixed number of queries per chunk of deliveries."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.models import Delivery, Response, TrackingHit
from campaigns.services.provider_events import DELIVERY_STATUS_RANK
from campaigns.tracking import labels
from core.batching import chunks
from crm.models import Contact
from crm.services.contact_input import ContactInput
from crm.services.event_input import EventInput
from crm.services.events import events_ingest

logger = logging.getLogger(__name__)

PROVIDER = "cadence"  # Response.provider of own tracking
EVENT_SOURCE = "tracking"  # crm Event.source of the events it makes
CLICK_EVENT = "email_clicked"
OPEN_EVENT = "email_opened"
_CHUNK = 500


@dataclass
class ClassifyReport:
    hits: int = 0
    labels: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    responses_created: int = 0
    responses_relabelled: int = 0
    events: int = 0


@dataclass
class _DeliveryFacts:
    pk: int
    campaign_id: int
    contact_id: int
    campaign_slug: str
    variant_name: str
    sent_at: dt.datetime | None
    links: list[Any]

    def link(self, index: int | None) -> dict[str, Any]:
        if index is None or not 0 <= index < len(self.links):
            return {}
        entry = self.links[index]
        return entry if isinstance(entry, dict) else {}


def _response_key(delivery_id: int, kind: str, link_index: int | None) -> str:
    return f"click:{delivery_id}:{link_index}" if kind == labels.CLICK else f"open:{delivery_id}"


def tracking_hits_classify(*, batch_size: int | None = None) -> ClassifyReport:
    """Label one batch of new hits (and the other hits of their deliveries)."""
    report = ClassifyReport()
    size = batch_size or settings.TRACKING_CLASSIFY_BATCH_SIZE
    with transaction.atomic():
        todo = list(
            TrackingHit.objects.select_for_update(skip_locked=True)
            .filter(processed=False)
            .order_by("pk")
            .values_list("pk", "delivery_id")[:size]
        )
        report.hits = len(todo)
        for ids in chunks(sorted({delivery_id for _, delivery_id in todo}), _CHUNK):
            _deliveries_classify(list(ids), report)
    return report


def _facts(delivery_ids: Sequence[int]) -> dict[int, _DeliveryFacts]:
    rows = Delivery.objects.filter(pk__in=delivery_ids).values_list(
        "pk",
        "campaign_id",
        "contact_id",
        "campaign__slug",
        "variant__name",
        Coalesce("sent_at", "handed_over_at"),
        "tracked_links",
    )
    return {
        row[0]: _DeliveryFacts(
            pk=row[0],
            campaign_id=row[1],
            contact_id=row[2],
            campaign_slug=row[3],
            variant_name=row[4] or "",
            sent_at=row[5],
            links=row[6] if isinstance(row[6], list) else [],
        )
        for row in rows
    }


def _deliveries_classify(delivery_ids: list[int], report: ClassifyReport) -> None:
    facts = _facts(delivery_ids)
    stored = list(TrackingHit.objects.filter(delivery_id__in=delivery_ids).order_by("pk"))
    by_delivery: dict[int, list[labels.Hit]] = defaultdict(list)
    for row in stored:
        link = facts[row.delivery_id].link(row.link_index)
        by_delivery[row.delivery_id].append(
            labels.Hit(
                id=row.pk,
                kind=row.kind,
                link_index=row.link_index,
                honeypot=bool(link.get("honeypot")),
                method=row.method,
                ip=row.ip,
                user_agent=row.user_agent,
                occurred_at=row.occurred_at,
            )
        )
    for delivery_id, hits in by_delivery.items():
        labels.delivery_hits_label(hits, sent_at=facts[delivery_id].sent_at)
    labelled = {hit.id: hit for hits in by_delivery.values() for hit in hits}
    # One UPDATE per distinct (label, reasons): a handful, however many hits changed.
    changed: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for row in stored:
        hit = labelled[row.pk]
        if not row.processed or (row.label, row.label_reasons) != (hit.label, hit.reasons):
            if not row.processed:
                report.labels[hit.label] += 1
            changed[(hit.label, tuple(hit.reasons))].append(row.pk)
    for (label, reasons), ids in changed.items():
        for part in chunks(ids, _CHUNK):
            TrackingHit.objects.filter(pk__in=part).update(
                label=label, label_reasons=list(reasons), processed=True
            )
    became_human = _responses_write(by_delivery, facts, report)
    _delivered_mark([key[0] for key in became_human])
    report.events += _events_send(became_human, facts)


def _wanted_responses(
    by_delivery: dict[int, list[labels.Hit]], facts: dict[int, _DeliveryFacts]
) -> dict[str, Response]:
    """The Response each (delivery, kind, link) should have now, by provider event id."""
    wanted: dict[str, Response] = {}
    for delivery_id, hits in by_delivery.items():
        groups: dict[tuple[str, int | None], list[labels.Hit]] = defaultdict(list)
        for hit in hits:
            if not hit.honeypot:
                groups[(hit.kind, hit.link_index if hit.kind == labels.CLICK else None)].append(hit)
        fact = facts[delivery_id]
        for (kind, index), group in groups.items():
            label = labels.best([hit.label for hit in group])
            first = min((hit for hit in group if hit.label == label), key=lambda h: h.occurred_at)
            key = _response_key(delivery_id, kind, index)
            wanted[key] = Response(
                delivery_id=delivery_id,
                contact_id=fact.contact_id,
                campaign_id=fact.campaign_id,
                kind=Response.Kind.CLICKED if kind == labels.CLICK else Response.Kind.OPENED,
                url=str(fact.link(index).get("url", ""))[:2000],
                provider=PROVIDER,
                provider_event_id=key,
                payload={"hit": first.id, "link_index": index},
                label=label,
                label_reasons=first.reasons,
                occurred_at=first.occurred_at,
            )
    return wanted


def _responses_write(
    by_delivery: dict[int, list[labels.Hit]],
    facts: dict[int, _DeliveryFacts],
    report: ClassifyReport,
) -> list[tuple[int, str, Response]]:
    """Create or relabel the Responses; returns (delivery, event type, response) for each
    that is human now and was not before."""
    wanted = _wanted_responses(by_delivery, facts)
    existing = {
        r.provider_event_id: r
        for r in Response.objects.select_for_update().filter(
            provider=PROVIDER, provider_event_id__in=list(wanted)
        )
    }
    new = [response for key, response in wanted.items() if key not in existing]
    Response.objects.bulk_create(new, ignore_conflicts=True)
    report.responses_created += len(new)
    relabelled = []
    human_now: list[tuple[int, str, Response]] = []
    for key, response in wanted.items():
        old = existing.get(key)
        was_human = old is not None and old.label == labels.HUMAN
        if old is not None and (old.label, old.label_reasons) != (
            response.label,
            response.label_reasons,
        ):
            old.label, old.label_reasons = response.label, response.label_reasons
            old.occurred_at, old.payload = response.occurred_at, response.payload
            relabelled.append(old)
        if response.label == labels.HUMAN and not was_human:
            event = CLICK_EVENT if response.kind == Response.Kind.CLICKED else OPEN_EVENT
            human_now.append((response.delivery_id or 0, event, response))
    Response.objects.bulk_update(relabelled, ["label", "label_reasons", "occurred_at", "payload"])
    report.responses_relabelled += len(relabelled)
    return human_now


def _delivered_mark(delivery_ids: list[int]) -> None:
    """A person opened or clicked: the message arrived, whatever the provider said."""
    if not delivery_ids:
        return
    rank = DELIVERY_STATUS_RANK[Delivery.Status.DELIVERED]
    earlier = [name for name, value in DELIVERY_STATUS_RANK.items() if value < rank]
    now = timezone.now()
    Delivery.objects.filter(pk__in=delivery_ids, status__in=earlier).update(
        status=Delivery.Status.DELIVERED,
        delivered_at=Coalesce("delivered_at", Value(now)),
        updated_at=now,
    )


def _contact_inputs(contact_ids: set[int]) -> dict[int, ContactInput]:
    """How events_ingest finds each contact again: its strongest identifier. Erased
    contacts have none and get no events."""
    found = {}
    rows = Contact.objects.filter(pk__in=contact_ids, is_erased=False).values_list(
        "pk", "external_id", "email", "phone"
    )
    for pk, external_id, email, phone in rows:
        if external_id:
            found[pk] = ContactInput(external_id=external_id)
        elif email:
            found[pk] = ContactInput(email=email)
        elif phone:
            found[pk] = ContactInput(phone=phone)
    return found


def _events_send(
    became_human: list[tuple[int, str, Response]], facts: dict[int, _DeliveryFacts]
) -> int:
    """email_clicked / email_opened for the contacts, through the one ingest path, so rules
    and journeys hear of them as of any event. Their client id is the Response's key: a
    Response that turns human twice still makes one event."""
    contacts = _contact_inputs({facts[d].contact_id for d, _, _ in became_human})
    inputs = []
    for delivery_id, event_type, response in became_human:
        fact = facts[delivery_id]
        contact = contacts.get(fact.contact_id)
        if contact is None:
            continue
        properties: dict[str, Any] = {
            "campaign": fact.campaign_slug,
            "variant": fact.variant_name,
            "delivery": delivery_id,
        }
        if event_type == CLICK_EVENT:
            properties["url"] = response.url
        inputs.append(
            EventInput(
                client_id=response.provider_event_id,
                type=event_type,
                occurred_at=response.occurred_at,
                contact=contact,
                properties=properties,
            )
        )
    if not inputs:
        return 0
    results = events_ingest(inputs, source=EVENT_SOURCE)
    return sum(result.status == "accepted" for result in results)
