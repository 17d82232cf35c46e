"""Deterministic synthetic data: contacts with realistic attribute and time-zone mixes, their
consent, and events (views, pages, carts, orders) whose recency makes some contacts dormant.

Everything comes from one seeded numpy generator, so a scale gives the same rows on every run
(times are offsets from the run's start). Rows go in with bulk_create in batches, with
progress; the rollups (last_activity_at, last_purchase_at) are computed here from the same
arrays rather than by a pass over the events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from crm.models import ConsentRecord, Contact, Event
from devtools.bench.results import Progress


@dataclass(frozen=True)
class Scale:
    contacts: int
    events: int
    ingest_events: int  # posted through the HTTP API
    latency_seconds: float
    fanout_emails: int
    evaluation_sample: int  # contacts through the full evaluator
    memory_evaluations: int
    ab_occurrences: int  # deliveries = contacts x this


SCALES: dict[str, Scale] = {
    "small": Scale(20_000, 200_000, 20_000, 10.0, 2_000, 5_000, 50_000, 10),
    "medium": Scale(100_000, 1_000_000, 100_000, 20.0, 10_000, 20_000, 200_000, 10),
    "large": Scale(1_000_000, 10_000_000, 500_000, 30.0, 50_000, 100_000, 1_000_000, 1),
}

SEED = 20_260_301
BATCH = 5_000
# (zone, country, weight): a shop selling mostly in Europe and North America, some Asia.
ZONES = [
    ("Europe/London", "GB", 14),
    ("Europe/Paris", "FR", 10),
    ("Europe/Berlin", "DE", 12),
    ("Europe/Madrid", "ES", 5),
    ("America/New_York", "US", 16),
    ("America/Chicago", "US", 7),
    ("America/Denver", "US", 3),
    ("America/Los_Angeles", "US", 9),
    ("America/Sao_Paulo", "BR", 4),
    ("Asia/Tokyo", "JP", 4),
    ("Asia/Shanghai", "CN", 4),
    ("Asia/Kolkata", "IN", 3),
    ("Australia/Sydney", "AU", 3),
    ("Pacific/Auckland", "NZ", 1),
    ("", "", 5),  # unknown zone: the strictest SMS window applies
]
FIRST = ["Ada", "Grace", "Alan", "Linus", "Mei", "Ravi", "Sofia", "Jonas", "Amara", "Kenji"]
LAST = ["Lovelace", "Hopper", "Turing", "Zhang", "Patel", "García", "Müller", "Okafor", "Sato"]
PLANS = ["free", "pro", "business"]
CATEGORIES = ["kitchen", "garden", "books", "toys", "outdoor", "lighting"]
# (type, share of events)
EVENT_MIX = [
    (Event.PRODUCT_VIEWED, 0.62),
    ("page_viewed", 0.25),
    ("cart_added", 0.07),
    (Event.ORDER_COMPLETED, 0.06),
]


def bench_email(index: int) -> str:
    return f"bench{index}@example.com"


@dataclass
class Dataset:
    now: dt.datetime
    contact_ids: np.ndarray  # database ids, in generation order
    consented: np.ndarray  # bool per contact: email marketing granted
    dormant_share: float


def _batches(total: int) -> range:
    return range(0, total, BATCH)


def dataset_load(*, scale: Scale, progress: Progress) -> Dataset:
    rng = np.random.default_rng(SEED)
    now = timezone.now().replace(microsecond=0)
    n = scale.contacts
    zone_weights = np.array([w for _, _, w in ZONES], dtype=float)
    zone_of = rng.choice(len(ZONES), size=n, p=zone_weights / zone_weights.sum())
    plan_of = rng.choice(len(PLANS), size=n, p=[0.7, 0.22, 0.08])
    points = rng.integers(0, 5_000, size=n)
    created_days = rng.uniform(1, 730, size=n)
    has_phone = rng.random(n) < 0.6
    consented = rng.random(n) < 0.7
    sms_consented = has_phone & (rng.random(n) < 0.4)
    # Days since each contact's latest activity: most are recent, a long tail is dormant.
    recency = rng.exponential(40.0, size=n)

    # Events: a heavy-tailed count per contact (a few very active people), scaled to the total.
    weights = rng.pareto(2.0, size=n) + 0.2
    per_contact = np.floor(weights / weights.sum() * scale.events).astype(np.int64)
    shortfall = scale.events - int(per_contact.sum())
    per_contact[rng.choice(n, size=shortfall, replace=True)] += 1
    owner = np.repeat(np.arange(n), per_contact)
    rng.shuffle(owner)  # interleave contacts in insert order, as real traffic does
    kinds = np.array([k for k, _ in EVENT_MIX])
    kind_of = rng.choice(len(EVENT_MIX), size=len(owner), p=[s for _, s in EVENT_MIX])
    # Each event happens at the contact's latest activity or some time before it.
    age_days = recency[owner] + rng.exponential(20.0, size=len(owner))
    values = np.round(rng.lognormal(3.5, 0.8, size=len(owner)), 2)
    category_of = rng.integers(0, len(CATEGORIES), size=len(owner))
    product_of = rng.integers(1, 2_000, size=len(owner))

    # Rollups from the same arrays: the latest event per contact, and the latest order.
    latest_age = np.full(n, np.inf)
    np.minimum.at(latest_age, owner, age_days)
    is_order = kinds[kind_of] == Event.ORDER_COMPLETED
    latest_order_age = np.full(n, np.inf)
    np.minimum.at(latest_order_age, owner[is_order], age_days[is_order])

    progress.say(f"Loading {n:,} contacts...")
    ids: list[int] = []
    for start in _batches(n):
        rows = []
        for i in range(start, min(start + BATCH, n)):
            zone, country, _ = ZONES[zone_of[i]]
            activity = latest_age[i]
            order = latest_order_age[i]
            rows.append(
                Contact(
                    external_id=f"B{i:08d}",
                    email=bench_email(i),
                    email_key=bench_email(i),
                    phone=f"+1202{i:07d}" if has_phone[i] else None,
                    first_name=FIRST[i % len(FIRST)],
                    last_name=LAST[(i // len(FIRST)) % len(LAST)],
                    timezone=zone,
                    country=country,
                    locale="en",
                    attributes={"plan": PLANS[plan_of[i]], "loyalty_points": int(points[i])},
                    created_at=now - dt.timedelta(days=float(created_days[i])),
                    last_activity_at=(
                        now - dt.timedelta(days=float(activity)) if np.isfinite(activity) else None
                    ),
                    last_purchase_at=(
                        now - dt.timedelta(days=float(order)) if np.isfinite(order) else None
                    ),
                )
            )
        with transaction.atomic():
            created = Contact.objects.bulk_create(rows, batch_size=BATCH)
        ids.extend(int(c.pk) for c in created)
        progress.count("contacts", len(ids), n)
    contact_ids = np.array(ids, dtype=np.int64)

    progress.say("Loading consent...")
    consent_rows = [
        ConsentRecord(
            contact_id=int(contact_ids[i]),
            channel=channel,
            purpose="marketing",
            status=ConsentRecord.Status.GRANTED,
            source=ConsentRecord.Source.IMPORT,
            text="Send me offers.",
            text_version="bench-1",
            occurred_at=now - dt.timedelta(days=float(created_days[i])),
        )
        for channel, mask in (("email", consented), ("sms", sms_consented))
        for i in np.flatnonzero(mask)
    ]
    for start in _batches(len(consent_rows)):
        with transaction.atomic():
            ConsentRecord.objects.bulk_create(consent_rows[start : start + BATCH])
        progress.count("consent records", min(start + BATCH, len(consent_rows)), len(consent_rows))

    progress.say(f"Loading {len(owner):,} events...")
    for start in _batches(len(owner)):
        stop = min(start + BATCH, len(owner))
        rows_e = []
        for j in range(start, stop):
            kind = str(kinds[kind_of[j]])
            is_purchase = kind == Event.ORDER_COMPLETED
            rows_e.append(
                Event(
                    contact_id=int(contact_ids[owner[j]]),
                    type=kind,
                    occurred_at=now - dt.timedelta(days=float(age_days[j])),
                    received_at=now,
                    properties={
                        "product_id": f"SKU-{product_of[j]}",
                        "category": CATEGORIES[category_of[j]],
                    },
                    value=Decimal(str(values[j])) if is_purchase else None,
                    currency="EUR" if is_purchase else "",
                    source="bench",
                    client_id=f"e{j}",
                )
            )
        with transaction.atomic():
            Event.objects.bulk_create(rows_e, batch_size=BATCH)
        progress.count("events", stop, len(owner))
    if connection.vendor == "postgresql":
        # Fresh statistics and visibility map, as autovacuum keeps them in service: without
        # them PostgreSQL plans against an "empty" table and skips index-only scans.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    dormant = float(np.mean(~np.isfinite(latest_age) | (latest_age >= 60)))
    return Dataset(now=now, contact_ids=contact_ids, consented=consented, dormant_share=dormant)
