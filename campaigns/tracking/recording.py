"""Writing a raw hit: one INSERT, after the answer has gone out.

Why a row per hit rather than an in-memory buffer flushed in bulk: a web server runs several
processes that come and go (restarts, deploys, a worker recycled after N requests), and a
buffer dies with its process, taking clicks with it; flushing it needs a thread or a timer
in every web process. One INSERT of a narrow row is a fraction of a millisecond, done in
HttpResponse.close() (which the WSGI server calls after sending the response) so the person
is already on their way; on PostgreSQL its commit does not wait for the WAL flush. Labelling,
deduplication and Responses happen later, in bulk (campaigns.tracking.classify)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.utils import timezone

from campaigns.models import Delivery, TrackingHit
from campaigns.tracking.rewrite import TrackedLink

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawHit:
    delivery_id: int
    link_index: int | None
    kind: str
    method: str
    ip: str | None
    user_agent: str


_INSERT_HIT = (
    f"INSERT INTO {TrackingHit._meta.db_table} "  # noqa: S608 (names from the model)
    "(delivery_id, link_index, kind, method, ip, user_agent, occurred_at, processed, label, "
    "label_reasons) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', '[]')"
)


def tracked_links_of(delivery_id: int) -> list[Any] | None:
    """Delivery.tracked_links in one fixed query (None for no such delivery): the only read
    on the redirect's path."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tracked_links FROM {table} WHERE id = %s", [delivery_id])  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        return None
    value = json.loads(row[0]) if isinstance(row[0], str | bytes) else row[0]
    return value if isinstance(value, list) else []


def tracked_links_store(*, delivery_id: int, links: Sequence[TrackedLink]) -> None:
    """What the tracked URLs of a message point at, written before it is handed over (so a
    click can never come first); a message rendered again replaces the list with its own."""
    Delivery.objects.filter(pk=delivery_id).update(tracked_links=list(links))


def hit_record(hit: RawHit) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Losing the last instant of hits to a database server crash is acceptable;
                # waiting for a disk flush on every click is not.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # Fixed SQL: building the ORM INSERT cost as much as running it.
        ops = connection.ops
        values = [
            hit.delivery_id,
            hit.link_index,
            hit.kind,
            hit.method[:8],
            ops.adapt_ipaddressfield_value(hit.ip),
            hit.user_agent[:500],
            ops.adapt_datetimefield_value(timezone.now()),
            False,
        ]
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_HIT, values)


class _RecordsOnClose:
    """Mixed into a response: the hit is written when the server closes the response, after
    its bytes went out. A failure is logged, never turned into an error page."""

    hit: RawHit | None = None

    def close(self) -> None:
        if self.hit is not None:
            try:
                hit_record(self.hit)
            except Exception:
                logger.exception("tracking hit not recorded (delivery %s)", self.hit.delivery_id)
            self.hit = None
        super().close()  # type: ignore[misc]


class RecordingRedirect(_RecordsOnClose, HttpResponseRedirect):
    pass


class RecordingResponse(_RecordsOnClose, HttpResponse):
    pass
