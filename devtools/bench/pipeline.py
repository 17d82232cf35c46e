"""Measurements across processes: ingestion over HTTP, event-to-queued latency with a worker,
and the send fan-out through real workers to the fake provider."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import requests
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, Delivery, MessageTemplate, Variant
from crm.api.auth import api_key_create
from crm.models import Event
from devtools.bench.data import SEED, Dataset, Scale, bench_email
from devtools.bench.results import Progress, Result, stopwatch
from devtools.processes import celery_worker
from segments.models import Segment, SegmentMembership, SegmentPendingContact
from triggers.models import TriggerPendingContact, TriggerRule
from triggers.services.rules import trigger_rule_save

PER_REQUEST = 500
CLIENT_THREADS = 4


def api_key() -> str:
    return api_key_create(name=f"bench-{int(time.time() * 1000)}")[1]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _event(
    index: int, contact: int, *, kind: str, when: dt.datetime, prefix: str
) -> dict[str, Any]:
    return {
        "id": f"{prefix}{index}",
        "type": kind,
        "occurred_at": _iso(when),
        "contact": {"email": bench_email(contact)},
        "properties": {"product_id": f"SKU-{index % 2000}", "category": "kitchen"},
    }


class _Poster:
    """POSTs prepared bodies from a few threads, one keep-alive session each."""

    def __init__(self, base_url: str, key: str) -> None:
        self.url = f"{base_url}/api/v1/events"
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._local = threading.local()

    def post(self, body: bytes) -> int:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        answer = session.post(self.url, data=body, headers=self.headers, timeout=120)
        if answer.status_code != 200:
            raise RuntimeError(f"the API answered {answer.status_code}: {answer.text[:300]}")
        results = answer.json()["results"]
        bad = [r for r in results if r["status"] == "rejected"]
        if bad:
            raise RuntimeError(f"the API rejected events: {bad[:3]}")
        return sum(1 for r in results if r["status"] == "accepted")


def _raw_insert(rows: Sequence[tuple[Any, ...]]) -> None:
    columns = (
        "contact_id, type, properties, value, currency, occurred_at, received_at, source, client_id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY crm_event ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO crm_event ({columns}) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


def measure_ingest(
    *, scale: Scale, dataset: Dataset, base_url: str, key: str, progress: Progress
) -> Result:
    rng = np.random.default_rng(SEED + 1)
    n = scale.ingest_events
    picks = rng.integers(0, scale.contacts, size=n)
    now = timezone.now()
    events = [
        _event(
            j,
            int(picks[j]),
            kind=Event.PRODUCT_VIEWED,
            when=now - dt.timedelta(seconds=j % 3600),
            prefix="i",
        )
        for j in range(n)
    ]
    bodies = [
        json.dumps({"source": "bench-api", "events": events[s : s + PER_REQUEST]}).encode()
        for s in range(0, n, PER_REQUEST)
    ]
    progress.say(
        f"ingest: {n:,} events in {len(bodies)} requests of {PER_REQUEST}, "
        f"{CLIENT_THREADS} client threads"
    )
    poster = _Poster(base_url, key)
    accepted = 0
    with stopwatch() as took, ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for done, count in enumerate(pool.map(poster.post, bodies), start=1):
            accepted += count
            progress.count("events posted", done * PER_REQUEST, n)
    rate = accepted / took[0]

    adapt = connection.ops.adapt_datetimefield_value
    rows = [
        (
            int(dataset.contact_ids[picks[j]]),
            e["type"],
            json.dumps(e["properties"]),
            None,
            "",
            adapt(dt.datetime.fromisoformat(e["occurred_at"])),
            adapt(now),
            "bench-raw",
            e["id"],
        )
        for j, e in enumerate(events)
    ]
    with stopwatch() as raw:
        for start in range(0, n, 50_000):
            _raw_insert(rows[start : start + 50_000])
    Event.objects.filter(source="bench-raw").delete()
    baseline = n / raw[0]
    pg = connection.vendor == "postgresql"
    ratio = rate / baseline
    return Result(
        name="ingest",
        value=rate,
        unit="events/s",
        baseline="raw bulk insert, " + ("COPY" if pg else "executemany"),
        baseline_value=baseline,
        goal=">= 10,000 events/s on PostgreSQL and >= 25 % of baseline",
        met=(ratio >= 0.25) and (rate >= 10_000 if pg else True),
        detail={
            "events": n,
            "accepted": accepted,
            "seconds": round(took[0], 3),
            "baseline_seconds": round(raw[0], 3),
            "requests": len(bodies),
            "per_request": PER_REQUEST,
            "client_threads": CLIENT_THREADS,
            "database": connection.vendor,
        },
    )


def _template(name: str) -> MessageTemplate:
    return MessageTemplate.objects.create(
        name=name,
        channel="email",
        subject="{{ contact.first_name|default:'Hello' }}, still thinking it over?",
        html_body=(
            "<p>Hi {{ contact.first_name|default:'there' }},</p>"
            "<p>Your {{ contact.attributes.plan|default:'free' }} plan has "
            "{{ contact.attributes.loyalty_points|default:0 }} points waiting.</p>"
        ),
    )


def _campaign(slug: str, *, kind: str, audience: Segment | None = None) -> Campaign:
    campaign = Campaign.objects.create(
        name=slug,
        slug=slug,
        channel="email",
        kind=kind,
        status=Campaign.Status.SENDING,
        audience=audience,
    )
    Variant.objects.create(campaign=campaign, name="A", template=_template(slug), weight=1)
    return campaign


def _disable_other_rules(keep: str) -> None:
    for rule in TriggerRule.objects.filter(enabled=True).exclude(slug=keep):
        data = {**rule.snapshot(), "enabled": False}
        trigger_rule_save(data=data, rule=rule, via="bench")


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def measure_latency(
    *, scale: Scale, dataset: Dataset, base_url: str, key: str, progress: Progress, logs: Path
) -> Result:
    rate_goal, tick = 1_000, 0.1
    per_tick = int(rate_goal * tick)
    probes_per_tick = 5
    ticks = int(scale.latency_seconds / tick)
    campaign = _campaign("bench-latency", kind=Campaign.Kind.TRIGGERED)
    rule_data = {
        "name": "Bench latency probe",
        "slug": "bench-latency",
        "enabled": True,
        "description": "",
        "match_mode": "all",
        "reentry": "once_ever",
        "reentry_days": None,
        "priority": 0,
        "active_from": None,
        "active_until": None,
        "audience_segment": None,
        "conditions": [{"id": "event_count", "event": "bench_probe", "count": 1, "hours": 1}],
        "actions": [{"id": "send_campaign", "campaign": campaign.slug}],
    }
    trigger_rule_save(data=rule_data, via="bench")
    _disable_other_rules("bench-latency")
    TriggerPendingContact.objects.all().delete()
    SegmentPendingContact.objects.all().delete()

    rng = np.random.default_rng(SEED + 2)
    consenting = np.flatnonzero(dataset.consented)
    probes = rng.choice(
        consenting, size=min(len(consenting), ticks * probes_per_tick), replace=False
    )
    background = rng.integers(0, scale.contacts, size=ticks * per_tick)
    bodies: list[bytes] = []
    for t in range(ticks):
        now = timezone.now()
        items = [
            _event(
                t * per_tick + k,
                int(background[t * per_tick + k]),
                kind=Event.PRODUCT_VIEWED,
                when=now,
                prefix="lb",
            )
            for k in range(per_tick - probes_per_tick)
        ]
        items += [
            _event(
                t * probes_per_tick + k,
                int(probes[t * probes_per_tick + k]),
                kind="bench_probe",
                when=now,
                prefix="lp",
            )
            for k in range(probes_per_tick)
        ]
        bodies.append(json.dumps({"source": "bench-latency", "events": items}).encode())
    progress.say(
        f"event_to_queued_latency: {rate_goal:,} events/s for {scale.latency_seconds:.0f} s "
        f"({len(probes):,} probes matching a send_campaign rule), worker running"
    )
    poster = _Poster(base_url, key)
    with celery_worker(log=logs / "worker-latency.log", queues="default,evaluation"):
        pending: list[Future[int]] = []
        start = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            for t, body in enumerate(bodies):
                due = start + t * tick
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pending = [f for f in pending if not f.done()] + [pool.submit(poster.post, body)]
                while len([f for f in pending if not f.done()]) >= 2 * CLIENT_THREADS:
                    time.sleep(0.005)  # the server is behind: sustain what it can
                progress.count("events sent", (t + 1) * per_tick, ticks * per_tick)
        posted_for = time.perf_counter() - start
        sustained = ticks * per_tick / posted_for
        probe_ids = [int(dataset.contact_ids[i]) for i in probes]

        def queued() -> int:
            return Delivery.objects.filter(campaign=campaign, contact_id__in=probe_ids).count()

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and (got := queued()) < len(probe_ids):
            progress.count("probe messages queued", got, len(probe_ids))
            time.sleep(0.5)
    received = dict(
        Event.objects.filter(type="bench_probe", contact_id__in=probe_ids).values_list(
            "contact_id", "received_at"
        )
    )
    latencies = [
        (created - received[cid]).total_seconds()
        for cid, created in Delivery.objects.filter(campaign=campaign).values_list(
            "contact_id", "created_at"
        )
        if cid in received
    ]
    p50, p95, p99 = (_percentile(latencies, q) for q in (50, 95, 99))
    _disable_other_rules("")
    return Result(
        name="event_to_queued_latency",
        value=p95,
        unit="s (p95)",
        baseline="none (p50 shown)",
        baseline_value=p50,
        goal="p95 <= 1 s under 1,000 events/s",
        met=bool(latencies) and p95 <= 1.0 and sustained >= 0.95 * rate_goal,
        detail={
            "p50": round(p50, 3),
            "p95": round(p95, 3),
            "p99": round(p99, 3),
            "probes": len(probe_ids),
            "queued": len(latencies),
            "target_events_per_s": rate_goal,
            "sustained_events_per_s": round(sustained, 1),
        },
    )


def _run_threads(work: Callable[[int], None], count: int, threads: int) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(count)))


def measure_fanout(*, scale: Scale, dataset: Dataset, progress: Progress, logs: Path) -> Result:
    from campaigns.channels.email import build_email
    from campaigns.rendering import recent_context_for, render_message
    from campaigns.services.launch import campaign_launch
    from devtools.fake_provider import FakeProvider

    n = scale.fanout_emails
    members = [int(dataset.contact_ids[i]) for i in np.flatnonzero(dataset.consented)[-n:]]
    segment = Segment.objects.create(name="Bench fan-out", slug="bench-fanout", is_active=False)
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, contact_id=cid) for cid in members], batch_size=5000
    )
    campaign = _campaign("bench-fanout", kind=Campaign.Kind.BROADCAST, audience=segment)
    fake = FakeProvider().start()
    env = {
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL_POSTMARK_SERVER_TOKEN": "bench-server-token",
        "ANYMAIL_POSTMARK_API_URL": fake.url + "/",
    }
    workers = 2
    progress.say(
        f"send_fanout: {n:,} personalised emails, Postmark backend -> fake provider, "
        f"{workers} worker processes"
    )
    try:
        with (
            celery_worker(
                log=logs / "worker-fanout.log", queues="dispatch", concurrency=workers, **env
            ),
            stopwatch() as took,
        ):
            campaign_launch(campaign=campaign)
            while True:
                left = Delivery.objects.filter(
                    campaign=campaign, status__in=["queued", "sending"]
                ).count()
                progress.count("emails sent", n - left, n)
                if not left:
                    break
                time.sleep(0.2)
        sent = Delivery.objects.filter(campaign=campaign, status="sent").count()
        provider_received = len(fake.requests)
        rate = sent / took[0]

        deliveries = list(
            Delivery.objects.filter(campaign=campaign)
            .select_related("variant__template", "contact")
            .order_by("pk")
        )
        recent = recent_context_for([d.contact_id for d in deliveries])
        with stopwatch() as render:
            for d in deliveries:
                assert d.variant is not None
                rendered = render_message(
                    template=d.variant.template,
                    contact=d.contact,
                    campaign=campaign,
                    delivery_id=d.pk,
                    recent=recent.get(d.contact_id, {}),
                )
                build_email(delivery=d, campaign=campaign, contact=d.contact, rendered=rendered)
        render_rate = len(deliveries) / render[0]

        payload = json.dumps(
            {
                "From": "hello@example.com",
                "To": "a@example.com",
                "Subject": "Hi",
                "HtmlBody": "<p>Hi</p>" * 40,
            }
        ).encode()
        local = threading.local()

        def post(_: int) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            session.post(
                fake.url + "/email",
                data=payload,
                timeout=30,
                headers={"Content-Type": "application/json"},
            ).raise_for_status()

        with stopwatch() as http:
            _run_threads(post, n, workers)
        http_rate = n / http[0]
    finally:
        fake.stop()
    slower = min(render_rate, http_rate)
    return Result(
        name="send_fanout",
        value=rate,
        unit="emails/s",
        baseline=f"slower of rendering alone ({render_rate:,.0f}/s) and HTTP posts alone "
        f"({http_rate:,.0f}/s)",
        baseline_value=slower,
        goal=">= 1,000 emails/s and >= 50 % of the slower baseline",
        met=rate >= 1_000 and rate >= 0.5 * slower,
        detail={
            "emails": n,
            "sent": sent,
            "seconds": round(took[0], 3),
            "workers": workers,
            "render_per_s": round(render_rate, 1),
            "http_per_s": round(http_rate, 1),
            "provider_requests": provider_received,
        },
    )
