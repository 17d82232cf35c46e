"""The demo: data a newcomer sees after `make run`, and the scripted `make demo` flow.

Each issue extends demo_run until it shows the whole flow: import, events, segments, triggers
firing, messages in the outbox, responses and an A/B result. The demo data's timestamps are
shifted so that its latest event happened half an hour ago, whenever the demo runs."""

from __future__ import annotations

import csv
import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.utils import timezone

from crm.models import ConsentRecord, Contact, ContactMerge, Event, MergeCandidate
from crm.services.importing import import_contacts_file, import_events_file
from segments.models import Segment

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
CONTACTS_CSV = DEMO_DATA / "contacts.csv"
EVENTS_CSV = DEMO_DATA / "events.csv"
DEMO_MARKER = "demo-"


# Segments a shop starts with: behaviour, purchases, consent, lifecycle and RFM combined.
DEMO_SEGMENTS: list[dict[str, Any]] = [
    {
        "slug": "browsed-not-bought-24h",
        "name": "Browsed, didn't buy (24 h)",
        "description": "Viewed at least 3 products and ordered nothing in the last day.",
        "min_size": 5,
        "definition": {
            "op": "and",
            "conditions": [
                {
                    "type": "behaviour",
                    "event": "product_viewed",
                    "operator": "at_least",
                    "count": 3,
                    "days": 1,
                },
                {"type": "behaviour", "event": "order_completed", "operator": "none", "days": 1},
            ],
        },
    },
    {
        "slug": "dormant-60d",
        "name": "Dormant for 60 days",
        "description": "No activity of any kind for more than 60 days.",
        "min_size": 5,
        "definition": {
            "op": "and",
            "conditions": [
                {"type": "recency", "of": "activity", "operator": "more_than", "days": 60}
            ],
        },
    },
    {
        "slug": "email-subscribers",
        "name": "Email subscribers",
        "description": "Everyone with email marketing consent.",
        "min_size": 10,
        "definition": {
            "op": "and",
            "conditions": [
                {"type": "consent", "channel": "email", "purpose": "marketing", "state": "has"}
            ],
        },
    },
    {
        "slug": "best-customers",
        "name": "Best customers",
        "description": "RFM champions or loyal customers who are still active.",
        "min_size": 5,
        "definition": {
            "op": "and",
            "conditions": [
                {
                    "op": "or",
                    "conditions": [
                        {"type": "rfm", "group": "champions"},
                        {"type": "rfm", "group": "loyal"},
                    ],
                },
                {"type": "lifecycle", "stages": ["active", "new", "reactivated"]},
            ],
        },
    },
    {
        "slug": "europe-kitchen-fans",
        "name": "Kitchen fans in Europe",
        "description": "Viewed kitchen products in the last 30 days, living in Europe.",
        "definition": {
            "op": "and",
            "conditions": [
                {
                    "type": "behaviour",
                    "event": "product_viewed",
                    "operator": "at_least",
                    "count": 1,
                    "days": 30,
                    "where": [{"property": "category", "operator": "equals", "value": "kitchen"}],
                },
                {"type": "country", "operator": "in", "countries": ["DE", "FR", "GB", "ES", "IT"]},
            ],
        },
    },
]


def demo_segments_create() -> list[Segment]:
    segments = []
    for spec in DEMO_SEGMENTS:
        segment, _ = Segment.objects.get_or_create(slug=spec["slug"], defaults=spec)
        segments.append(segment)
    return segments


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
    """Load the demo contacts and events once; returns False when they were already there."""
    if Contact.objects.filter(external_id__startswith=DEMO_MARKER).exists():
        return False
    import_contacts_file(path=CONTACTS_CSV, stdout=stdout)
    shifted = _write_csv(settings.VAR_DIR / "imports" / "demo-events.csv", demo_events_shifted())
    import_events_file(path=shifted, stdout=stdout)
    demo_segments_create()
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


def demo_run(*, stdout: OutputWrapper) -> None:
    stdout.write("Cadence demo\n============\n")
    stdout.write(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']})\n")
    stdout.write(f"outbox:   {settings.EMAIL_OUTBOX_DIR} and {settings.SMS_OUTBOX_FILE}\n")

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
    if len(problems) > 8:
        stdout.write(f"  … {len(problems) - 8} more in the report\n")
    again = import_contacts_file(path=CONTACTS_CSV)
    stdout.write(
        f"second run of the same file: created {again.rows_created}, "
        f"updated {again.rows_updated} (nothing changes)\n"
    )

    _heading(stdout, "2. Ingest events through the API over HTTP")
    out = _CaptureLastLine()
    call_command("create_api_key", "demo", stdout=out)
    key = out.last_line
    events = [_api_event(row) for row in demo_events_shifted()]
    statuses: Counter[str] = Counter()
    rejected: list[str] = []
    with _http_server() as base_url:
        for start in range(0, len(events), 500):
            status, body = _post_json(
                f"{base_url}/api/v1/events", key, {"events": events[start : start + 500]}
            )
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

    _heading(stdout, "3. Duplicates")
    call_command("find_duplicates", stdout=stdout)
    open_candidates = MergeCandidate.objects.filter(status=MergeCandidate.Status.OPEN)
    for candidate in open_candidates.select_related("contact_a", "contact_b").order_by("-score")[
        :5
    ]:
        stdout.write(
            f"  {candidate.score:5.1f}  {candidate.contact_a}  ~  {candidate.contact_b}"
            f"  ({', '.join(candidate.reasons)})\n"
        )
    # The demo merges what a reviewer would: both pairs are the same person under a typo.
    call_command("merge_duplicates", "--min-score", "70", stdout=stdout)
    for merge in ContactMerge.objects.select_related("survivor"):
        snapshot = merge.duplicate_snapshot
        moved = ", ".join(f"{count} {name}" for name, count in merge.moved.items() if count)
        stdout.write(
            f"  merged {snapshot.get('email')} into {merge.survivor.email} "
            f"(moved: {moved or 'nothing'}; the old address is now an alias)\n"
        )

    _heading(stdout, "4. Data quality")
    call_command("data_quality", stdout=stdout)

    _heading(stdout, "5. Segments, lifecycle, RFM and clusters")
    demo_segments_create()
    demo_analytics(stdout=stdout)
    call_command("segments", "list", stdout=stdout)

    _heading(stdout, "Totals")
    stdout.write(
        f"contacts {Contact.objects.count()}, events {Event.objects.count()}, "
        f"consent ledger entries {ConsentRecord.objects.count()}\n"
    )


class _CaptureLastLine(OutputWrapper):
    """Captures a command's output to read the key `create_api_key` prints last."""

    def __init__(self) -> None:
        import io

        self._buffer = io.StringIO()
        super().__init__(self._buffer)

    @property
    def last_line(self) -> str:
        return self._buffer.getvalue().strip().splitlines()[-1].strip()
