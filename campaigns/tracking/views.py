"""/t/c/<token> (a 302 to the link's target) and /t/o/<token> (a 1x1 GIF).

Both answer at once from one indexed read and record the hit after the response (recording).
A GET changes nothing but a raw hit row: scanners follow every link. HEAD is answered too
(and labelled scanner later). Every tampered, foreign, expired or unknown token gets Django's
one 404, the same as any URL that does not exist."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from campaigns.models import TrackingHit
from campaigns.tracking.recording import (
    RawHit,
    RecordingRedirect,
    RecordingResponse,
    tracked_links_of,
)
from campaigns.tracking.tokens import click_payload, open_delivery_id
from campaigns.views.common import client_ip

# The smallest transparent GIF: 1x1, one colour, transparent.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _hit(request: HttpRequest, *, delivery_id: int, link_index: int | None, kind: str) -> RawHit:
    return RawHit(
        delivery_id=delivery_id,
        link_index=link_index,
        kind=kind,
        method=request.method or "",
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    found = click_payload(token)
    if found is None:
        raise Http404
    delivery_id, index = found
    links = tracked_links_of(delivery_id)
    link = links[index] if links is not None and index < len(links) else None
    target = link.get("target") if isinstance(link, dict) else None
    if not isinstance(target, str) or not target.lower().startswith(("http://", "https://")):
        raise Http404
    response = RecordingRedirect(target)
    response.hit = _hit(
        request, delivery_id=delivery_id, link_index=index, kind=TrackingHit.Kind.CLICK
    )
    return _private(response)


@require_http_methods(["GET", "HEAD"])
def pixel(request: HttpRequest, token: str) -> HttpResponse:
    delivery_id = open_delivery_id(token)
    if delivery_id is None or tracked_links_of(delivery_id) is None:
        raise Http404
    response = RecordingResponse(PIXEL_GIF, content_type="image/gif")
    response.hit = _hit(
        request, delivery_id=delivery_id, link_index=None, kind=TrackingHit.Kind.OPEN
    )
    return _private(response)
