"""Segment's official Python library (segment-analytics-python) pointed at a running Cadence,
as an existing pipeline would be: host = <server>/api, write key = a Cadence API key. It posts
to <host>/v1/batch with the key as HTTP Basic username and again as writeKey in the body."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from segment.analytics import Client as SegmentClient

from crm.api.auth import api_key_create
from crm.models import Contact, ContactMerge, Event

pytestmark = pytest.mark.django_db(transaction=True)

WHEN = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_segments_own_client_lands_contacts_and_events(live_server: Any, gzip: bool) -> None:
    errors: list[Any] = []
    client = SegmentClient(
        write_key=api_key_create(name="segment-sdk")[1],
        host=f"{live_server.url}/api",
        gzip=gzip,
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )

    client.page(anonymous_id="anon-1", name="Pricing", properties={"path": "/pricing"})
    # Sent now, alone: the visitor is a contact of their own until they are identified.
    client.flush()
    assert Contact.objects.filter(external_id="anonymous:anon-1").exists()
    client.identify(
        user_id="u-1",
        anonymous_id="anon-1",
        traits={"email": "ada@example.com", "firstName": "Ada", "plan": "pro"},
    )
    client.track(
        user_id="u-1",
        event="Order Completed",
        properties={"revenue": 42.5, "currency": "EUR"},
        timestamp=WHEN,
        message_id="order-1",
    )
    client.track(user_id="u-1", event="Order Completed", timestamp=WHEN, message_id="order-1")
    client.flush()
    client.join()

    assert errors == []
    ada = Contact.objects.get(external_id="u-1")
    assert (ada.email, ada.first_name, ada.attributes) == (
        "ada@example.com",
        "Ada",
        {"plan": "pro"},
    )
    events = {event.type: event for event in Event.objects.filter(contact=ada)}
    assert set(events) == {"page_viewed", "order_completed"}
    assert Event.objects.count() == 2  # the replayed messageId was recorded once
    order = events["order_completed"]
    assert (order.value, order.currency, order.occurred_at) == (Decimal("42.50"), "EUR", WHEN)
    assert events["page_viewed"].properties == {"path": "/pricing", "name": "Pricing"}
    # The anonymous visitor's page view came along when they were identified.
    assert ContactMerge.objects.get(survivor=ada).duplicate_snapshot["external_id"] == (
        "anonymous:anon-1"
    )


def test_segments_client_with_a_wrong_key_reports_the_refusal(live_server: Any) -> None:
    errors: list[Any] = []
    client = SegmentClient(
        write_key="cad_not-a-key",
        host=f"{live_server.url}/api",
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )

    client.track(user_id="u-2", event="Clicked")
    client.flush()
    client.join()

    assert [error.status for error in errors] == [401]
    assert not Event.objects.exists()


@pytest.mark.browser
def test_the_docs_page_shows_the_segment_endpoints_in_a_browser(
    live_server: Any, page: Any, tmp_path: Path
) -> None:
    page.goto(f"{live_server.url}/api/v1/docs")
    page.screenshot(path=str(tmp_path / "api-docs.png"), full_page=True)

    text = page.inner_text("body")
    for endpoint in ("track", "identify", "page", "screen", "alias", "batch"):
        assert f"POST /{endpoint}" in text
    assert "HTTP Basic username" in text
