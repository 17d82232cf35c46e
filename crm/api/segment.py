"""The Segment-compatible endpoints: /api/v1/track, /identify, /page, /screen, /alias and
/batch, so that a pipeline already sending to Segment (its official libraries, RudderStack, an
HTTP destination) points at Cadence unchanged (host = PUBLIC_BASE_URL/api).

What differs from /api/v1/events is only the wire format: the key may also come as HTTP Basic
(key as username, empty password) or as `writeKey` in the body, the body may be gzip-encoded,
and a call is at most 32 KB and a batch 500 KB (decompressed), Segment's own limits. Each call
is checked by the same parsers and answered with the same per-item results."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from crm.api.auth import api_endpoint, api_key_admit, api_key_refused, header_api_key
from crm.api.segment_input import MAX_CALL_BYTES, SegmentCall, segment_call_parse
from crm.jsonbody import JsonBodyError, json_parse
from crm.models import ConsentRecord, Contact
from crm.services.contacts import contacts_upsert
from crm.services.events import events_ingest
from crm.services.identities import IdentityLink, anonymous_external_id, identities_link

MAX_BATCH_BYTES = 500 * 1024
# Events from these endpoints are stored under this source: a messageId is unique within it.
SOURCE = "segment"
_NO_KEY = (
    "send an API key as 'Authorization: Bearer <key>', as the HTTP Basic username with an "
    "empty password, or as writeKey in the body"
)


def _body_bytes(request: HttpRequest, max_bytes: int) -> bytes:
    """The body, gunzipped when Content-Encoding says gzip, refused (413) beyond `max_bytes`
    whether compressed or not: a small gzip that inflates to gigabytes stops at the limit."""
    too_large = JsonBodyError(413, f"the body is larger than {max_bytes} bytes")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes:
        raise too_large
    raw = request.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise too_large
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise JsonBodyError(415, f"Content-Encoding {encoding!r} is not supported; use gzip")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise JsonBodyError(400, f"the body is not valid gzip: {exc}") from exc
    if len(body) > max_bytes or inflater.unconsumed_tail:
        raise JsonBodyError(413, f"the body is larger than {max_bytes} bytes once decompressed")
    if not inflater.eof:
        raise JsonBodyError(400, "the gzip body is cut short")
    return body


def _authenticated_body(request: HttpRequest, max_bytes: int) -> tuple[Any, HttpResponse | None]:
    """(parsed body, None), or (None, the answer: 401, 429, 400, 413 or 415). A key in the
    header is checked before the body is read; `writeKey` needs the body read first."""
    key, problem = header_api_key(request)
    if problem:
        return None, api_key_refused(problem)
    if key and (refused := api_key_admit(request, key)) is not None:
        return None, refused
    try:
        # Not strict: an unstorable value rejects only its own call.
        body = json_parse(_body_bytes(request, max_bytes), strict=False)
    except JsonBodyError as exc:
        return None, JsonResponse(exc.as_json(), status=exc.status)
    if not key:
        write_key = body.get("writeKey") if isinstance(body, Mapping) else None
        if not isinstance(write_key, str) or not write_key:
            return None, api_key_refused(_NO_KEY)
        if (refused := api_key_admit(request, write_key)) is not None:
            return None, refused
    if not isinstance(body, Mapping):
        return None, JsonResponse(
            {"error": "the input is not valid", "errors": [_error("", "must be an object")]},
            status=400,
        )
    return body, None


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _path(prefix: str, field: str) -> str:
    if not prefix or not field:
        return prefix or field
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def _sent_at(body: Mapping[str, Any]) -> tuple[dt.datetime | None, str]:
    raw = body.get("sentAt")
    if raw is None or raw == "":
        return None, ""
    try:
        value = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        return None, f"must be ISO 8601 with a zone, e.g. 2026-03-01T09:30:00Z, got {raw!r}"
    return value, ""


def _segment(request: HttpRequest, *, kind: str | None) -> HttpResponse:
    body, refused = _authenticated_body(
        request, MAX_BATCH_BYTES if kind is None else MAX_CALL_BYTES
    )
    if refused is not None:
        return refused
    sent_at, problem = _sent_at(body)
    if problem:
        return JsonResponse(
            {"error": "the input is not valid", "errors": [_error("sentAt", problem)]}, status=400
        )
    if kind is None:
        items = body.get("batch")
        if not isinstance(items, list):
            return JsonResponse(
                {"error": "the input is not valid", "errors": [_error("batch", "must be a list")]},
                status=400,
            )
    else:
        items = [body]
    received_at = timezone.now()
    results: list[dict[str, Any]] = []
    calls: list[tuple[int, SegmentCall]] = []
    for index, item in enumerate(items):
        call, errors = segment_call_parse(item, kind=kind, sent_at=sent_at, received_at=received_at)
        if call is None:
            prefix = "" if kind else f"batch[{index}]"
            message = "; ".join(f"{_path(prefix, e.field)}: {e.message}" for e in errors)
            results.append({"index": index, "status": "rejected", "error": message})
        else:
            results.append({})
            calls.append((index, call))
    _record(calls, results)
    if kind is not None and results[0]["status"] == "rejected":
        return JsonResponse({"error": results[0]["error"], "results": results}, status=400)
    return JsonResponse({"results": results})


def _record(calls: Sequence[tuple[int, SegmentCall]], results: list[dict[str, Any]]) -> None:
    """Tie ids together first (so that this batch's events already land on one contact),
    then upsert the identified contacts and tie the anonymous ids of those identified by an
    address alone, then record the events; fill in `results`."""
    contact_of: dict[int, int] = {}
    links: list[IdentityLink] = []
    for _, call in calls:
        if call.previous_id:
            previous = (call.previous_id, anonymous_external_id(call.previous_id))
            links.append(IdentityLink(call.external_id, previous))
        elif call.user_id and call.anonymous_id:
            anonymous = (anonymous_external_id(call.anonymous_id),)
            links.append(IdentityLink(call.user_id, anonymous, anonymous_only=True))
    linked = identities_link(links, merged_by="api: Segment identify/alias")

    identifies = [(index, call) for index, call in calls if call.contact is not None]
    upserted = contacts_upsert(
        [call.contact for _, call in identifies if call.contact is not None],
        source=ConsentRecord.Source.API,
    )
    changed: dict[int, bool] = {}
    addressed: list[IdentityLink] = []
    for (index, call), result in zip(identifies, upserted, strict=True):
        contact_of[index] = result.contact_id
        changed[index] = result.changed
        if call.anonymous_link and call.anonymous_id:
            anonymous = (anonymous_external_id(call.anonymous_id),)
            link = IdentityLink("", anonymous, anonymous_only=True, contact_id=result.contact_id)
            addressed.append(link)
    identities_link(addressed, merged_by="api: Segment identify")

    tracked = [(index, call.event) for index, call in calls if call.event is not None]
    ingested = events_ingest([event for _, event in tracked], source=SOURCE) if tracked else []
    status: dict[int, str] = {}
    for (index, _), outcome in zip(tracked, ingested, strict=True):
        contact_of[index] = outcome.contact_id
        status[index] = outcome.status
    for index, call in calls:
        if call.previous_id:
            contact_of[index] = linked[call.external_id]

    public = dict(Contact.objects.filter(pk__in=contact_of.values()).values_list("pk", "uuid"))
    for index, _ in calls:
        found = public.get(contact_of[index])
        results[index] = {
            "index": index,
            "status": status.get(index, "accepted"),
            "error": None,
            "contact": str(found) if found else None,
        }
        if index in changed:
            results[index]["changed"] = changed[index]


# Unauthenticated for the decorator: _authenticated_body checks the key in any of its forms.
@api_endpoint(methods=("POST",), authenticated=False)
def track(request: HttpRequest) -> HttpResponse:
    return _segment(request, kind="track")


@api_endpoint(methods=("POST",), authenticated=False)
def identify(request: HttpRequest) -> HttpResponse:
    return _segment(request, kind="identify")


@api_endpoint(methods=("POST",), authenticated=False)
def page(request: HttpRequest) -> HttpResponse:
    return _segment(request, kind="page")


@api_endpoint(methods=("POST",), authenticated=False)
def screen(request: HttpRequest) -> HttpResponse:
    return _segment(request, kind="screen")


@api_endpoint(methods=("POST",), authenticated=False)
def alias(request: HttpRequest) -> HttpResponse:
    return _segment(request, kind="alias")


@api_endpoint(methods=("POST",), authenticated=False)
def batch(request: HttpRequest) -> HttpResponse:
    return _segment(request, kind=None)
