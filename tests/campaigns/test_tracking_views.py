"""/t/c/<token> and /t/o/<token>: a 302 or a GIF at once, a raw hit recorded afterwards, and
the one 404 for every token that is not ours, intact and current."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from campaigns.models import Response, TrackingHit
from campaigns.tokens import unsubscribe_token
from campaigns.tracking.tokens import click_token, open_token
from campaigns.tracking.views import PIXEL_GIF
from tests.campaigns.tracking_helpers import PIXEL, hit, parts, path_of, send_tracked, tracked_links

pytestmark = pytest.mark.django_db


def _unknown(client: Client) -> Any:
    return client.get("/no-such-page/at-all")


def test_a_click_is_a_302_at_once_and_leaves_a_raw_hit(outbox: Path, client: Client) -> None:
    delivery, message = send_tracked(outbox)

    response = hit(
        client, tracked_links(message)[1], ua="Mozilla/5.0 Firefox/120", ip="198.51.100.4"
    )

    assert response.status_code == 302
    assert response["Location"].startswith("https://shop.example.com/teapots?")
    assert "no-store" in response["Cache-Control"]
    [row] = TrackingHit.objects.all()
    assert (row.delivery_id, row.link_index, row.kind, row.method) == (
        delivery.pk,
        1,
        "click",
        "GET",
    )
    assert (row.ip, row.user_agent, row.label, row.processed) == (
        "198.51.100.4",
        "Mozilla/5.0 Firefox/120",
        "",
        False,
    )
    assert not Response.objects.exists()  # nothing counted until classified


def test_the_open_pixel_is_a_transparent_gif_never_cached(outbox: Path, client: Client) -> None:
    _, message = send_tracked(outbox)
    html, _ = parts(message)

    response = client.get(path_of(PIXEL.findall(html)[0]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == PIXEL_GIF
    assert "no-store" in response["Cache-Control"]
    assert TrackingHit.objects.get().kind == "open"


def test_head_is_answered_and_recorded_as_such(outbox: Path, client: Client) -> None:
    _, message = send_tracked(outbox)

    response = hit(client, tracked_links(message)[0], method="head")

    assert response.status_code == 302
    assert TrackingHit.objects.get().method == "HEAD"


def test_a_post_is_refused(outbox: Path, client: Client) -> None:
    _, message = send_tracked(outbox)

    assert client.post(path_of(tracked_links(message)[0])).status_code == 405
    assert not TrackingHit.objects.exists()


def _assert_same_404(client: Client, path: str) -> None:
    response = client.get(path)
    unknown = _unknown(client)
    assert response.status_code == unknown.status_code == 404
    assert response.content == unknown.content


def test_tampered_foreign_and_made_up_tokens_get_the_ordinary_404(
    outbox: Path, client: Client
) -> None:
    delivery, message = send_tracked(outbox)
    good = path_of(tracked_links(message)[0])
    token = good.rsplit("/", 1)[1]
    payload, stamp, signature = token.split(":")

    _assert_same_404(client, f"/t/c/{payload}:{stamp}:{signature[:-2]}xx")  # tampered
    _assert_same_404(client, f"/t/c/{token[:20]}")  # truncated
    _assert_same_404(client, "/t/c/not-a-token")
    _assert_same_404(client, f"/t/c/{open_token(delivery_id=delivery.pk)}")  # an open token
    foreign = unsubscribe_token(
        contact_id=delivery.contact_id, channel="email", purpose="marketing"
    )
    _assert_same_404(client, f"/t/c/{foreign}")  # an unsubscribe token
    _assert_same_404(client, f"/t/o/{click_token(delivery_id=delivery.pk, link_index=0)}")
    _assert_same_404(client, f"/t/c/{click_token(delivery_id=delivery.pk, link_index=99)}")
    _assert_same_404(client, f"/t/c/{click_token(delivery_id=delivery.pk + 1000, link_index=0)}")
    _assert_same_404(client, f"/t/o/{open_token(delivery_id=delivery.pk + 1000)}")
    assert not TrackingHit.objects.exists()


def test_an_expired_token_gets_the_ordinary_404(
    outbox: Path, client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery, _ = send_tracked(outbox)
    settings.TRACKING_LINK_MAX_AGE_DAYS = 30
    long_ago = int(time.time()) - 31 * 86400
    monkeypatch.setattr(
        signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(long_ago)
    )
    old = click_token(delivery_id=delivery.pk, link_index=0)
    monkeypatch.undo()

    _assert_same_404(client, f"/t/c/{old}")
    assert (
        client.get(f"/t/c/{click_token(delivery_id=delivery.pk, link_index=0)}").status_code == 302
    )


def test_the_request_cannot_change_where_a_link_goes(outbox: Path, client: Client) -> None:
    """No open redirect: the target is what was sent, whatever the request says, and a token
    signed with another key is worthless."""
    _, message = send_tracked(outbox)
    path = path_of(tracked_links(message)[1])

    for query in (
        "?next=https://evil.example/",
        "?url=https://evil.example/",
        "?target=//evil.example",
    ):
        response = client.get(
            path + query, HTTP_HOST="127.0.0.1", HTTP_REFERER="https://evil.example/"
        )
        assert response["Location"].startswith("https://shop.example.com/teapots?")

    forged = signing.dumps(
        [1, 0], key="not-our-secret", salt="campaigns.tracking.click", compress=True
    )
    _assert_same_404(client, f"/t/c/{forged}")


@pytest.mark.django_db(transaction=True)
def test_erasing_the_contact_forgets_addresses_agents_and_links(
    outbox: Path, client: Client
) -> None:
    from crm.services.privacy import contact_erase

    delivery, message = send_tracked(outbox)
    link = tracked_links(message)[0]
    hit(client, link, ua="Mozilla/5.0 Firefox/120", ip="198.51.100.4")

    contact_erase(contact=delivery.contact, requested_by="test")

    row = TrackingHit.objects.get()
    assert (row.ip, row.user_agent) == (None, "")
    _assert_same_404(client, path_of(link))
