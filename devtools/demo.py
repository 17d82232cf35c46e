"""The demo: data a newcomer sees after `make run`, and the scripted `make demo` flow.

Each issue extends demo_run until it shows the whole flow: import, events, segments, triggers
firing, messages in the outbox, responses and an A/B result. The demo data's timestamps are
shifted so that its latest event happened half an hour ago, whenever the demo runs."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from email import policy
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from campaigns.abtest.report import campaign_report, report_lines
from campaigns.abtest.winner import campaign_decide
from campaigns.channels.provider_events import twilio_signature
from campaigns.models import Campaign, Delivery, MessageTemplate, Response, Variant
from campaigns.services.launch import campaign_launch
from campaigns.services.state import campaign_progress
from crm.models import (
    ConsentRecord,
    Contact,
    ContactMerge,
    Event,
    MergeCandidate,
    Suppression,
)
from crm.normalise import address_hash
from crm.services.consent import build_consent_record, consent_record_bulk
from crm.services.contact_input import ContactInput
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from crm.services.importing import import_contacts_file, import_events_file
from devtools.demo_catalogue import demo_catalogue_create
from devtools.processes import celery_worker
from segments.analytics.clv import clv_refresh, prediction_fit_summary
from segments.models import Segment, SegmentPendingContact
from segments.services import segment_refresh
from triggers.models import TriggerFiring, TriggerPendingContact, TriggerRule

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
CONTACTS_CSV = DEMO_DATA / "contacts.csv"
EVENTS_CSV = DEMO_DATA / "events.csv"
DEMO_MARKER = "demo-"


def demo_analytics(*, stdout: OutputWrapper) -> None:
    """Lifecycle stages, RFM, clusters and every segment, computed now."""
    call_command("segments", "lifecycle", stdout=stdout)
    call_command("segments", "rfm", stdout=stdout)
    call_command("segments", "cluster", "--k-range", "2-5", stdout=stdout)
    call_command("segments", "refresh", "--all", stdout=stdout)


def _parse_time(raw: str) -> dt.datetime:
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))


def demo_events_shifted(*, now: dt.datetime | None = None) -> list[dict[str, str]]:
    """The demo events with occurred_at moved so that the latest is 30 minutes before now."""
    with EVENTS_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    latest = max(_parse_time(row["occurred_at"]) for row in rows)
    shift = (now or timezone.now()) - dt.timedelta(minutes=30) - latest
    for row in rows:
        row["occurred_at"] = (_parse_time(row["occurred_at"]) + shift).isoformat()
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def demo_data_load(*, stdout: OutputWrapper) -> bool:
    """Load the demo shop once: segments, campaigns, rules, contacts and events; returns
    False when it was already there."""
    if Contact.objects.filter(external_id__startswith=DEMO_MARKER).exists():
        return False
    demo_catalogue_create()
    import_contacts_file(path=CONTACTS_CSV, stdout=stdout)
    shifted = _write_csv(settings.VAR_DIR / "imports" / "demo-events.csv", demo_events_shifted())
    import_events_file(path=shifted, stdout=stdout)
    demo_analytics(stdout=stdout)
    return True


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def _http_server() -> Iterator[str]:
    """The real Django application on a real HTTP server on 127.0.0.1, for the API calls."""
    server = make_server(
        "127.0.0.1",
        0,
        get_wsgi_application(),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _post_json(url: str, key: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 (our own server on 127.0.0.1)
        url,
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (our own server)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _requests_by_contact(events: list[dict[str, Any]], *, limit: int) -> list[tuple[int, int]]:
    """(start, end) slices of at most `limit` events (unless one person has more), never
    splitting one person's events (sorted in place by person, keeping their order): a
    backfill sent the way a client
    should, so the worker never judges someone on half their history (a person whose old
    visits came in one request and recent ones in the next would look dormant between)."""
    events.sort(key=lambda event: sorted(event["contact"].items()))
    runs: list[tuple[int, int]] = []  # each person's events
    for index, event in enumerate(events):
        if runs and events[runs[-1][0]]["contact"] == event["contact"]:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    slices: list[tuple[int, int]] = []
    for run_start, run_end in runs:
        if slices and run_end - slices[-1][0] <= limit:
            slices[-1] = (slices[-1][0], run_end)
        else:
            slices.append((run_start, run_end))
    return slices


def _api_event(row: dict[str, str]) -> dict[str, Any]:
    contact = {key: row[key] for key in ("email", "phone", "external_id") if row.get(key)}
    event: dict[str, Any] = {
        "id": row["id"],
        "type": row["type"],
        "occurred_at": row["occurred_at"],
        "contact": contact,
        "properties": {
            key.removeprefix("prop_").removeprefix("properties."): value
            for key, value in row.items()
            if (key.startswith(("prop_", "properties."))) and value
        },
    }
    if row.get("value"):
        event["value"] = row["value"]
        event["currency"] = row.get("currency") or "EUR"
    return event


def _heading(stdout: OutputWrapper, title: str) -> None:
    stdout.write(f"\n{title}\n{'-' * len(title)}\n")


@contextmanager
def _worker(*, stdout: OutputWrapper) -> Iterator[None]:
    """A real Celery worker on this demo's database and broker, as `make run` starts."""
    log_path = settings.VAR_DIR / "worker.log"
    with celery_worker(log=log_path, queues="default,dispatch,evaluation,webhooks") as process:
        stdout.write(f"worker:   a real Celery worker (pid {process.pid}), log in {log_path}\n")
        yield


def _busy() -> dict[str, int]:
    """Work still waiting for the worker: evaluations, segment refreshes, firings, sends."""
    now = timezone.now()
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    return {
        "evaluations": TriggerPendingContact.objects.count(),
        "segment refreshes": SegmentPendingContact.objects.count(),
        "firings": TriggerFiring.objects.filter(status=TriggerFiring.Status.PENDING).count(),
        "sends": Delivery.objects.filter(
            due, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
        ).count(),
    }


def _wait_idle(*, stdout: OutputWrapper, timeout: float = 180) -> None:
    """Until the worker has nothing left that is due (deferred sends wait for their time)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        busy = _busy()
        quiet = quiet + 1 if not any(busy.values()) else 0
        if quiet >= 3:
            return
        time.sleep(1)
    stdout.write(f"  (still busy after {timeout:.0f}s: {_busy()}; see the worker log)\n")


def _outbox_summary(stdout: OutputWrapper) -> None:
    emails = sorted(Path(settings.EMAIL_OUTBOX_DIR).glob("*.eml"))
    sms_file = Path(settings.SMS_OUTBOX_FILE)
    sms = sms_file.read_text(encoding="utf-8").splitlines() if sms_file.exists() else []
    stdout.write(
        f"outbox: {len(emails)} emails in {settings.EMAIL_OUTBOX_DIR}, "
        f"{len(sms)} SMS in {sms_file}\n"
    )


def _progress_line(campaign: Campaign) -> str:
    progress = campaign_progress(campaign=campaign)
    statuses = ", ".join(f"{status} {n}" for status, n in progress["by_status"].items())
    reasons = ", ".join(f"{reason} {n}" for reason, n in progress["by_reason"].items())
    return f"{progress['total']} deliveries: {statuses}" + (f" ({reasons})" if reasons else "")


def _show_email(stdout: OutputWrapper, delivery: Delivery) -> None:
    for path in Path(settings.EMAIL_OUTBOX_DIR).glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message.get("X-Cadence-Delivery") == str(delivery.pk):
            stdout.write(f"  {path.name}\n")
            for header in ("To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"):
                value = str(message.get(header, ""))
                stdout.write(f"    {header}: {value[:110]}{'…' if len(value) > 110 else ''}\n")
            return


def _consent_line(contact: Contact, channel: str) -> str:
    entry = (
        ConsentRecord.objects.filter(contact=contact, channel=channel, purpose="marketing")
        .order_by("-occurred_at", "-id")
        .first()
    )
    return f"{channel} marketing {entry.status} (source {entry.source})" if entry else "none"


def _post(url: str, data: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def demo_run(*, stdout: OutputWrapper) -> None:
    # The demo signs its simulated Twilio replies and ESP webhooks itself; outside `make demo`
    # these secrets may be unset, and demo-only values are enough for this process.
    settings.TWILIO_AUTH_TOKEN = settings.TWILIO_AUTH_TOKEN or "demo-twilio-auth-token"
    settings.ANYMAIL.setdefault("WEBHOOK_SECRET", "demo:demo-webhook-secret")
    # The demo plays Postmark reporting a bounce. Only the configured ESP's tracking webhook
    # answers, so Postmark's is mounted for this process; mail still goes to .eml files
    # (EMAIL_BACKEND was settled when settings loaded).
    settings.EMAIL_ESP = settings.EMAIL_ESP or "postmark"
    stdout.write("Cadence demo\n============\n")
    stdout.write(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']})\n")
    stdout.write(f"outbox:   {settings.EMAIL_OUTBOX_DIR} and {settings.SMS_OUTBOX_FILE}\n")
    demo_catalogue_create()
    stdout.write(
        "catalogue: segments, templates, campaigns and the rules browse-abandonment and "
        "win-back (devtools/demo_data/rules.yaml), enabled\n"
    )
    with _worker(stdout=stdout), _http_server() as base_url:
        _demo_steps(stdout=stdout, base_url=base_url)


def _demo_steps(*, stdout: OutputWrapper, base_url: str) -> None:
    _heading(stdout, "1. Import contacts from a messy CSV")
    run = import_contacts_file(path=CONTACTS_CSV, stdout=stdout)
    stdout.write(
        f"rows {run.rows_read}: created {run.rows_created}, updated {run.rows_updated}, "
        f"unchanged {run.rows_unchanged}, rejected {run.rows_rejected}\n"
    )
    with open(run.report_path, newline="", encoding="utf-8-sig") as handle:
        problems = [row for row in csv.DictReader(handle) if row.get("outcome") == "rejected"]
    for row in problems[:8]:
        stdout.write(f"  row {row['row']}, {row['column']}: {row['reason']}\n")
    again = import_contacts_file(path=CONTACTS_CSV)
    stdout.write(
        f"second run of the same file: created {again.rows_created}, "
        f"updated {again.rows_updated} (nothing changes)\n"
    )

    _heading(stdout, "2. Ingest events through the API over HTTP (the worker evaluates them)")
    out = _CaptureLastLine()
    call_command("crm", "create-api-key", "demo", stdout=out)
    key = out.last_line
    events = [_api_event(row) for row in demo_events_shifted()]
    statuses: Counter[str] = Counter()
    rejected: list[str] = []
    for start, end in _requests_by_contact(events, limit=500):
        status, body = _post_json(f"{base_url}/api/v1/events", key, {"events": events[start:end]})
        if status != 200:
            raise RuntimeError(f"POST /api/v1/events answered {status}: {body}")
        for result in body["results"]:
            statuses[result["status"]] += 1
            if result["status"] == "rejected":
                rejected.append(f"events[{start + result['index']}]: {result['error']}")
    _, replay = _post_json(f"{base_url}/api/v1/events", key, {"events": events[:500]})
    stdout.write(
        f"{len(events)} events: accepted {statuses['accepted']}, duplicate "
        f"{statuses['duplicate']}, rejected {statuses['rejected']}\n"
    )
    for line in rejected[:5]:
        stdout.write(f"  {line}\n")
    replayed = Counter(result["status"] for result in replay["results"])
    stdout.write(f"replaying the first batch: {dict(replayed)} (replays are harmless)\n")
    _wait_idle(stdout=stdout)

    _heading(stdout, "3. Duplicates")
    call_command("crm", "find-duplicates", stdout=stdout)
    open_candidates = MergeCandidate.objects.filter(status=MergeCandidate.Status.OPEN)
    for candidate in open_candidates.select_related("contact_a", "contact_b").order_by("-score")[
        :5
    ]:
        stdout.write(
            f"  {candidate.score:5.1f}  {candidate.contact_a}  ~  {candidate.contact_b}"
            f"  ({', '.join(candidate.reasons)})\n"
        )
    # The demo merges what a reviewer would: both pairs are the same person under a typo.
    call_command("crm", "merge-duplicates", "--min-score", "70", stdout=stdout)
    for merge in ContactMerge.objects.select_related("survivor"):
        snapshot = merge.duplicate_snapshot
        moved = ", ".join(f"{count} {name}" for name, count in merge.moved.items() if count)
        stdout.write(
            f"  merged {snapshot.get('email')} into {merge.survivor.email} "
            f"(moved: {moved or 'nothing'}; the old address is now an alias)\n"
        )

    _heading(stdout, "4. Data quality")
    call_command("crm", "data-quality", stdout=stdout)

    _heading(stdout, "5. Segments, lifecycle, RFM, clusters and predicted purchases")
    demo_analytics(stdout=stdout)
    call_command("segments", "list", stdout=stdout)
    # The daily refresh's prediction step: a fit, or the reason there is none (no crash).
    stdout.write(f"{prediction_fit_summary(clv_refresh())}\n")

    _heading(stdout, "6. Trigger rules firing")
    call_command("triggers", "sweep", stdout=stdout)
    _wait_idle(stdout=stdout)
    for rule in TriggerRule.objects.order_by("slug"):
        firings = TriggerFiring.objects.filter(rule=rule)
        by_status = dict(Counter(firings.values_list("status", flat=True)))
        stdout.write(f"{rule.slug}: {firings.count()} firings {by_status}\n")
    for slug in ("browse-abandonment", "win-back-sms", "win-back-email"):
        stdout.write(f"  campaign {slug}: {_progress_line(Campaign.objects.get(slug=slug))}\n")
    _outbox_summary(stdout)
    sample = Delivery.objects.filter(
        campaign__slug="browse-abandonment", status=Delivery.Status.SENT
    ).first()
    if sample is not None:
        stdout.write("one of the browse-abandonment emails:\n")
        _show_email(stdout, sample)

    _heading(stdout, "7. A broadcast to a segment")
    broadcast = Campaign.objects.get(slug="november-picks")
    # Scheduled for tomorrow 10:00 local in `make run`; the demo sends it now.
    Campaign.objects.filter(pk=broadcast.pk).update(
        scheduled_at=timezone.now(), send_at_local_time=None
    )
    call_command("campaigns", "send", "november-picks", stdout=stdout)
    _wait_idle(stdout=stdout)
    broadcast.refresh_from_db()
    stdout.write(f"november-picks is {broadcast.status}: {_progress_line(broadcast)}\n")
    _outbox_summary(stdout)

    _heading(stdout, "8. Customers are obeyed at once")
    sent = list(
        Delivery.objects.filter(campaign=broadcast, status=Delivery.Status.SENT)
        .select_related("contact")
        .order_by("pk")[:2]
    )
    if len(sent) == 2:
        unsubscriber, bouncer = sent[0], sent[1]
        # a) One-click unsubscribe with the List-Unsubscribe URL from the email itself.
        for path in Path(settings.EMAIL_OUTBOX_DIR).glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if message.get("X-Cadence-Delivery") == str(unsubscriber.pk):
                header = str(message["List-Unsubscribe"])
                url = header.split("<", 1)[1].split(">", 1)[0]
                status = _post(
                    url.replace(settings.PUBLIC_BASE_URL, base_url),
                    b"List-Unsubscribe=One-Click",
                    {"Content-Type": "application/x-www-form-urlencoded"},
                )
                stdout.write(
                    f"one-click unsubscribe by {unsubscriber.contact.email}: HTTP {status}; "
                    f"now {_consent_line(unsubscriber.contact, 'email')}\n"
                )
        # b) A hard bounce reported by the ESP's webhook (anymail, basic auth).
        payload = {
            "RecordType": "Bounce",
            "ID": 900001,
            "Type": "HardBounce",
            "Email": bouncer.to_address,
            "BouncedAt": timezone.now().isoformat(),
            "Description": "The server was unable to deliver your message",
            "Details": "550 5.1.1 no such user",
            "MessageID": bouncer.provider_message_id,
            "Metadata": {"delivery_id": str(bouncer.pk)},
        }
        auth = base64.b64encode(settings.ANYMAIL["WEBHOOK_SECRET"].encode()).decode()
        status = _post(
            f"{base_url}/webhooks/anymail/postmark/tracking/",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        )
        _wait_idle(stdout=stdout)
        suppressed = Suppression.objects.filter(
            channel="email", address_hash=address_hash("email", bouncer.to_address)
        ).exists()
        stdout.write(
            f"hard bounce for {bouncer.to_address}: HTTP {status}; suppressed: {suppressed}; "
            f"now {_consent_line(bouncer.contact, 'email')}\n"
        )
    # c) STOP by SMS, signed the way Twilio signs it.
    texter = (
        Contact.objects.filter(phone__isnull=False, consents__channel="sms").order_by("pk").first()
    )
    if texter is not None and texter.phone:
        params = {
            "From": texter.phone,
            "To": settings.TWILIO_FROM_NUMBER or "+14155550999",
            "Body": " Stop ",
            "MessageSid": "SMdemo0000000000000000000000000001",
        }
        signature = twilio_signature(
            url=f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/inbound/",
            params=params,
            auth_token=settings.TWILIO_AUTH_TOKEN,
        )
        status = _post(
            f"{base_url}/webhooks/twilio/inbound/",
            urllib.parse.urlencode(params).encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
            },
        )
        now_state = _consent_line(texter, "sms")
        stdout.write(f"'Stop' texted from {texter.phone}: HTTP {status}; now {now_state}\n")
    # d) The next send skips them, checked at the last moment.
    campaign_launch(campaign=broadcast, occurrence="reminder")
    _wait_idle(stdout=stdout)
    if len(sent) == 2:
        for original in sent:
            reminder = Delivery.objects.get(
                campaign=broadcast, occurrence="reminder", contact=original.contact
            )
            stdout.write(
                f"reminder to {original.contact.email}: {reminder.status}"
                f"{f' ({reminder.reason})' if reminder.reason else ''}\n"
            )
    stdout.write(f"november-picks with its reminder: {_progress_line(broadcast)}\n")

    _heading(stdout, "9. An A/B test with simulated responses, decided at its horizon")
    _demo_ab_test(stdout=stdout)

    _heading(stdout, "Totals")
    stdout.write(
        f"contacts {Contact.objects.count()}, events {Event.objects.count()}, "
        f"consent ledger entries {ConsentRecord.objects.count()}, "
        f"deliveries {Delivery.objects.count()}, responses {Response.objects.count()}\n"
    )
    _outbox_summary(stdout)


AB_AUDIENCE = 3000
# Simulated conversion rates: B's personal subject really does better than A's.
AB_TRUE_RATES = {"A": 0.04, "B": 0.09, "holdout": 0.02}


def _demo_ab_test(*, stdout: OutputWrapper) -> None:
    """3,000 simulated subscribers, a subject-line test on 40 % of them with a 10 % holdout,
    simulated opens, clicks and orders, then the decision at the declared horizon and the
    winner sent to the other 60 %."""
    rng = random.Random(2026)  # noqa: S311 (a simulation, not security)
    now = timezone.now()
    zones = ["Europe/Paris", "America/New_York", "Asia/Shanghai", "Europe/London", ""]
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                external_id=f"absim-{n:05d}",
                email=f"subscriber{n}@ab-sim.example",
                first_name=f"Sim{n}",
                timezone=zones[n % len(zones)],
            )
            for n in range(AB_AUDIENCE)
        ],
        batch_size=500,
    )
    ids = list(
        Contact.objects.filter(external_id__startswith="absim-").values_list("pk", flat=True)
    )
    consent_record_bulk(
        build_consent_record(
            contact_id=contact_id,
            channel="email",
            status="granted",
            source="import",
            text="Simulated subscriber for the A/B demo.",
            proof={"demo": "ab-simulation"},
        )
        for contact_id in ids
    )
    audience = Segment.objects.create(
        slug="ab-simulated-subscribers",
        name="Simulated subscribers (A/B demo)",
        min_size=100,
        definition={
            "op": "and",
            "conditions": [
                {
                    "type": "attribute",
                    "field": "external_id",
                    "operator": "contains",
                    "value": "absim-",
                }
            ],
        },
    )
    segment_refresh(segment=audience)
    templates = list(MessageTemplate.objects.filter(name__startswith="November").order_by("name"))
    # The horizon lies at least the attribution window after the send (a shorter one is
    # refused in admin: conversions could not have arrived yet).
    horizon = now + dt.timedelta(days=1, hours=2)
    campaign = Campaign.objects.create(
        slug="subject-line-test",
        name="Subject line test",
        channel="email",
        kind=Campaign.Kind.BROADCAST,
        status=Campaign.Status.SCHEDULED,
        audience=audience,
        holdout_percent=10,
        test_share=40,
        test_horizon_at=horizon,
        goal_event="order_completed",
        attribution_window_days=1,
    )
    variants = {}
    for name, template in zip("AB", templates, strict=True):
        variants[name] = Variant.objects.create(campaign=campaign, name=name, template=template)
    stdout.write(
        f"{len(contacts):,} simulated subscribers; 40 % in the test (A: plain subject, "
        f"B: personal subject), 10 % holdout; horizon {horizon:%Y-%m-%d %H:%M} UTC\n"
    )
    launched = campaign_launch(campaign=campaign)
    stdout.write(f"test launched: {launched.created} deliveries ({launched.holdout} holdout)\n")
    _wait_idle(stdout=stdout)

    # Simulated responses: opens and clicks as a provider's webhooks would record them, and
    # orders as the shop's API would report them, at the true rates above.
    tested = Delivery.objects.filter(campaign=campaign, occurrence="").select_related("variant")
    external_ids = dict(Contact.objects.filter(pk__in=ids).values_list("pk", "external_id"))
    responses = []
    orders = []
    for delivery in tested:
        arm = "holdout" if delivery.is_holdout else delivery.variant.name  # type: ignore[union-attr]
        if delivery.status == Delivery.Status.SENT and rng.random() < 0.45:
            responses.append(
                Response(
                    delivery=delivery,
                    contact_id=delivery.contact_id,
                    campaign=campaign,
                    kind=Response.Kind.OPENED,
                    provider="simulated",
                )
            )
            if rng.random() < (0.12 if arm == "B" else 0.08):
                responses.append(
                    Response(
                        delivery=delivery,
                        contact_id=delivery.contact_id,
                        campaign=campaign,
                        kind=Response.Kind.CLICKED,
                        url="https://shop.example.com/november",
                        provider="simulated",
                    )
                )
        if rng.random() < AB_TRUE_RATES[arm]:
            orders.append(
                EventInput(
                    client_id=f"ab-order-{delivery.pk}",
                    type="order_completed",
                    occurred_at=(delivery.sent_at or delivery.created_at)
                    + dt.timedelta(minutes=rng.randint(5, 90)),
                    contact=ContactInput(external_id=external_ids[delivery.contact_id]),
                    properties={"simulated": True},
                    value=Decimal(rng.choice(["19.90", "34.50", "59.00"])),
                    currency="EUR",
                )
            )
    Response.objects.bulk_create(responses, batch_size=500)
    events_ingest(orders, source="demo-simulation")
    stdout.write(
        f"simulated: {sum(r.kind == Response.Kind.OPENED for r in responses)} opens, "
        f"{sum(r.kind == Response.Kind.CLICKED for r in responses)} clicks, "
        f"{len(orders)} orders\n"
    )
    _wait_idle(stdout=stdout)

    report = campaign_report(campaign=campaign, now=now)
    stdout.write(f"before the horizon: {report['horizon']['explanation']}\n")
    decision = campaign_decide(campaign=campaign, now=horizon)
    for line in report_lines(campaign_report(campaign=campaign, now=horizon)):
        stdout.write(f"  {line}\n")
    stdout.write(f"decision: {decision.get_outcome_display()}: {decision.reason}\n")
    _wait_idle(stdout=stdout)
    winners = Delivery.objects.filter(campaign=campaign, occurrence="winner")
    chosen = decision.variant.name if decision.variant else "?"
    stdout.write(
        f"the other 60 % got variant {chosen}: {winners.count()} deliveries, "
        f"{winners.filter(status=Delivery.Status.SENT).count()} sent, "
        f"{winners.filter(is_holdout=True).count()} holdout\n"
    )


class _CaptureLastLine(OutputWrapper):
    """Captures a command's output to read the key `crm create-api-key` prints last."""

    def __init__(self) -> None:
        import io

        self._buffer = io.StringIO()
        super().__init__(self._buffer)

    @property
    def last_line(self) -> str:
        return self._buffer.getvalue().strip().splitlines()[-1].strip()
