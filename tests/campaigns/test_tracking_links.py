"""Links of a sent marketing email: rewritten to signed /t/c/ URLs whose targets (with UTM
parameters and a click id) are stored on the delivery; consent links, mailto:, tel: and
anchors untouched; a pixel and a hidden honeypot link; nothing of it when tracking is off."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from campaigns.tracking.tokens import click_id_parse
from tests.campaigns.tracking_helpers import (
    PIXEL,
    TRACKED,
    hit,
    honeypot_link,
    parts,
    send_tracked,
    tracked_links,
)

pytestmark = pytest.mark.django_db


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_every_web_link_of_html_and_text_becomes_a_tracked_link(outbox: Path) -> None:
    delivery, message = send_tracked(outbox)
    html, text = parts(message)

    assert "https://shop.example.com" not in html
    assert "https://shop.example.com" not in text
    assert len(tracked_links(message)) == 2
    # The text part names the same links by the same indexes as the HTML.
    assert {link for link in TRACKED.findall(text) if "/t/c/" in link} <= set(
        TRACKED.findall(html.replace("&amp;", "&"))
    )
    assert [link["url"] for link in delivery.tracked_links if not link["honeypot"]] == [
        "https://shop.example.com/mugs?colour=blue&size=l",
        "https://shop.example.com/teapots",
    ]


def test_mailto_tel_anchors_and_consent_links_are_never_rewritten(outbox: Path) -> None:
    delivery, message = send_tracked(outbox)
    html, text = parts(message)

    assert 'href="mailto:help@example.com"' in html
    assert 'href="tel:+4420123456"' in html
    assert 'href="#top"' in html
    # The footer's unsubscribe and preference links point straight at their pages.
    assert "/u/" in html and "/preferences/" in html
    assert "/u/" in text and "/preferences/" in text
    assert not any("/u/" in link["target"] for link in delivery.tracked_links)


def test_a_click_lands_on_the_target_with_utm_parameters_and_a_click_id(
    outbox: Path, client: Client
) -> None:
    delivery, message = send_tracked(outbox)
    mugs = tracked_links(message)[0]

    response = hit(client, mugs)

    assert response.status_code == 302
    target = response["Location"]
    assert target.startswith("https://shop.example.com/mugs?colour=blue&size=l&")
    query = _query(target)
    assert query["utm_source"] == ["cadence"]
    assert query["utm_medium"] == ["email"]
    assert query["utm_campaign"] == [delivery.campaign.slug]
    assert query["utm_content"] == ["A"]
    assert click_id_parse(query["cadence_cid"][0]) == (delivery.pk, 0)


def test_a_links_own_utm_values_are_kept(outbox: Path, client: Client) -> None:
    html = '<p><a href="https://shop.example.com/?utm_campaign=spring&utm_source=blog">Shop</a></p>'
    _, message = send_tracked(outbox, html=html)

    target = hit(client, tracked_links(message)[0])["Location"]

    query = _query(target)
    assert query["utm_campaign"] == ["spring"]
    assert query["utm_source"] == ["blog"]
    assert query["utm_medium"] == ["email"]


def test_utm_parameters_can_be_turned_off(outbox: Path, client: Client) -> None:
    _, message = send_tracked(outbox, utm_parameters=False)

    target = hit(client, tracked_links(message)[1])["Location"]

    assert "utm_" not in target
    assert "cadence_cid=" in target


def test_the_html_has_an_open_pixel_and_a_hidden_honeypot_link(outbox: Path) -> None:
    delivery, message = send_tracked(outbox)
    html, _ = parts(message)

    assert len(PIXEL.findall(html)) == 1
    assert 'width="1" height="1"' in html
    trap = honeypot_link(message)
    start = html.index(trap)
    tag = html[html.rindex("<a", 0, start) : html.index(">", start)]
    assert 'aria-hidden="true"' in tag and "display:none" in tag
    assert [link["honeypot"] for link in delivery.tracked_links].count(True) == 1


def test_with_tracking_off_links_go_straight_to_their_targets_with_utm(outbox: Path) -> None:
    delivery, message = send_tracked(outbox, track_opens_clicks=False)
    html, text = parts(message)

    assert "/t/c/" not in html and "/t/o/" not in html and "/t/c/" not in text
    assert delivery.tracked_links == []
    assert "https://shop.example.com/teapots?utm_source=cadence&amp;utm_medium=email" in html
    assert "cadence_cid" not in html


def test_with_tracking_and_utm_off_the_message_is_as_written(outbox: Path) -> None:
    _, message = send_tracked(outbox, track_opens_clicks=False, utm_parameters=False)
    html, _ = parts(message)

    assert 'href="https://shop.example.com/teapots"' in html
    assert 'href="https://shop.example.com/mugs?colour=blue&amp;size=l"' in html


def test_a_transactional_email_is_not_tracked(outbox: Path) -> None:
    delivery, message = send_tracked(outbox, is_transactional=True, purpose="transactional")
    html, _ = parts(message)

    assert "/t/c/" not in html and "/t/o/" not in html
    assert delivery.tracked_links == []


def test_outlook_buttons_are_tracked_and_stylesheets_are_not(outbox: Path) -> None:
    html = (
        '<html><head><link rel="stylesheet" href="https://fonts.example.com/a.css"></head><body>'
        '<v:roundrect href="https://shop.example.com/sale" style="width:200px">Sale</v:roundrect>'
        "</body></html>"
    )
    delivery, message = send_tracked(outbox, html=html)
    sent, _ = parts(message)

    assert 'href="https://fonts.example.com/a.css"' in sent
    assert "https://shop.example.com/sale" not in sent
    assert [link["url"] for link in delivery.tracked_links if not link["honeypot"]] == [
        "https://shop.example.com/sale"
    ]
