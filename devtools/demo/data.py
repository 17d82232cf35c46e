"""The demo shop's data: loaded once for `make run`, and its events shifted to look recent."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.utils import timezone

from crm.models import Contact
from crm.services.importing import import_contacts_file, import_events_file
from devtools.demo_catalogue import demo_catalogue_create

DEMO_DATA = Path(__file__).resolve().parents[1] / "demo_data"
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
