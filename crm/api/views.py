"""The ingestion API's views: thin wrappers that parse JSON, call crm's services and
selectors, and answer JSON. The contract is in crm/api/openapi.py and docs/api.md."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join

from crm.api.auth import api_endpoint, json_error
from crm.api.openapi import openapi_schema
from crm.jsonbody import JsonBodyError, json_body_read, unstorable_reason
from crm.models import ConsentRecord, Contact, ContactMerge, Event
from crm.normalise import email_key, normalise_email, normalise_phone
from crm.selectors_identity import contacts_by_identifiers
from crm.services.contact_input import contact_input_parse
from crm.services.contacts import contacts_upsert
from crm.services.errors import FieldError
from crm.services.event_input import EventInput, event_input_parse
from crm.services.events import events_ingest

MAX_EVENTS_PER_REQUEST = 1000
MAX_CONTACT_BODY = 1 * 1024 * 1024
# 1,000 events with a few properties each fit comfortably; a runaway client does not.
MAX_EVENTS_BODY = 16 * 1024 * 1024
RECENT_EVENTS = 50
_SOURCE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,49}")


def _json(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, encoder=DjangoJSONEncoder, safe=False)


def _validation_error(errors: list[FieldError]) -> JsonResponse:
    return _json(
        {
            "error": "the input is not valid",
            "errors": [{"field": error.field, "message": error.message} for error in errors],
        },
        status=400,
    )


def _item_path(index: int, field: str) -> str:
    """events[3].properties.note, events[3]["a b"], events[3]: the path of a field of an item."""
    prefix = f"events[{index}]"
    if not field or field.startswith("["):
        return f"{prefix}{field}"
    return f"{prefix}.{field}"


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: a forwarded-for header is whatever the client chose to write.
    return request.META.get("REMOTE_ADDR") or None


# --- Representations -------------------------------------------------------------------------


def _contact_summary(contact: Contact) -> dict[str, Any]:
    return {
        "id": str(contact.uuid),
        "external_id": contact.external_id,
        "email": contact.email,
        "phone": contact.phone,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "timezone": contact.timezone,
        "locale": contact.locale,
        "country": contact.country,
        "attributes": contact.attributes,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        "last_activity_at": contact.last_activity_at,
        "last_purchase_at": contact.last_purchase_at,
    }


def _event_summary(event: Event) -> dict[str, Any]:
    return {
        "id": event.client_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "received_at": event.received_at,
        "source": event.source,
        "properties": event.properties,
        "value": None if event.value is None else str(event.value),
        "currency": event.currency,
    }


def _consent_state(contact: Contact) -> list[dict[str, Any]]:
    """The latest ledger entry per (channel, purpose): the contact's current consent."""
    current: dict[tuple[str, str], dict[str, Any]] = {}
    entries = ConsentRecord.objects.filter(contact=contact).order_by(
        "channel", "purpose", "-occurred_at", "-id"
    )
    for entry in entries.values("channel", "purpose", "status", "source", "occurred_at"):
        current.setdefault(
            (entry["channel"], entry["purpose"]),
            {
                "channel": entry["channel"],
                "purpose": entry["purpose"],
                "status": entry["status"],
                "source": entry["source"],
                "at": entry["occurred_at"],
            },
        )
    return list(current.values())


# --- Contacts --------------------------------------------------------------------------------

_LOOKUP_PARAMS = ("email", "phone", "external_id")


def _contacts_lookup(request: HttpRequest) -> HttpResponse:
    given = [name for name in _LOOKUP_PARAMS if request.GET.get(name)]
    if len(given) != 1:
        return _validation_error(
            [FieldError("query", "give exactly one of ?email=, ?phone= or ?external_id=")]
        )
    name = given[0]
    raw = request.GET[name]
    # A NUL in a query makes PostgreSQL refuse the whole statement: answer it here instead.
    if (reason := unstorable_reason(raw)) is not None:
        return _validation_error([FieldError(name, f"the text {reason}")])
    try:
        if name == "email":
            found = contacts_by_identifiers(email_keys=[email_key(normalise_email(raw))])
        elif name == "phone":
            found = contacts_by_identifiers(phones=[normalise_phone(raw)])
        else:
            found = contacts_by_identifiers(external_ids=[raw.strip()])
    except ValidationError as exc:
        return _validation_error([FieldError(name, "; ".join(exc.messages))])
    contacts = Contact.objects.filter(pk__in=set(found.values()), is_erased=False).order_by("pk")
    return _json({"results": [_contact_summary(contact) for contact in contacts]})


def _contacts_upsert(request: HttpRequest) -> HttpResponse:
    try:
        # One contact is one item: any unstorable value refuses it, naming the field.
        body = json_body_read(request, max_bytes=MAX_CONTACT_BODY)
    except JsonBodyError as exc:
        return _json(exc.as_json(), status=exc.status)
    if not isinstance(body, Mapping):
        return _validation_error([FieldError("", "the body must be a JSON object")])
    data, errors = contact_input_parse(body)
    if data is None:
        return _validation_error(errors)
    api_key = request.api_key  # type: ignore[attr-defined]
    [result] = contacts_upsert(
        [data],
        source=ConsentRecord.Source.API,
        consent_proof={"api_key": api_key.name},
        ip_address=_client_ip(request),
        user_agent=request.headers.get("User-Agent", "")[:1000],
    )
    public_id = Contact.objects.values_list("uuid", flat=True).get(pk=result.contact_id)
    return _json(
        {
            "id": str(public_id),
            "created": result.created,
            "changed": result.changed,
            # Every consent entry answered: recorded, unchanged, or refused with a reason
            # (withdrawn_by_contact, suppressed, erased), never silently dropped.
            "consent": [outcome.as_json() for outcome in result.consent],
        },
        status=201 if result.created else 200,
    )


@api_endpoint(methods=("GET", "POST"))
def contacts(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _contacts_upsert(request)
    return _contacts_lookup(request)


@api_endpoint(methods=("GET",))
def contact_detail(request: HttpRequest, contact_id: str) -> HttpResponse:
    try:
        contact_uuid = uuid.UUID(contact_id)
    except ValueError:
        return json_error(404, "no contact has this id")
    contact = Contact.objects.filter(uuid=contact_uuid).first()
    if contact is None:
        merge = ContactMerge.objects.filter(duplicate_uuid=contact_uuid).select_related("survivor")
        merged = merge.order_by("-merged_at").first()
        if merged is not None:
            return json_error(
                404,
                "this contact was merged into another one",
                merged_into=str(merged.survivor.uuid),
            )
        return json_error(404, "no contact has this id")
    if contact.is_erased:
        # Gone on purpose: say so, without anything that was erased.
        return _json(
            {"id": str(contact.uuid), "erased": True, "erased_at": contact.erased_at}, status=410
        )
    events = Event.objects.filter(contact=contact).order_by("-occurred_at", "-id")[:RECENT_EVENTS]
    return _json(
        {
            **_contact_summary(contact),
            "erased": False,
            "consent": _consent_state(contact),
            "events": [_event_summary(event) for event in events],
        }
    )


# --- Events ----------------------------------------------------------------------------------


@api_endpoint(methods=("POST",))
def events(request: HttpRequest) -> HttpResponse:
    try:
        # Not strict: an unstorable value rejects only its own event (event_input_parse).
        body = json_body_read(request, max_bytes=MAX_EVENTS_BODY, strict=False)
    except JsonBodyError as exc:
        return _json(exc.as_json(), status=exc.status)
    if not isinstance(body, Mapping):
        return _validation_error([FieldError("", 'the body must be {"events": [...]}')])
    items = body.get("events")
    if not isinstance(items, list):
        return _validation_error([FieldError("events", "must be a list of events")])
    if len(items) > MAX_EVENTS_PER_REQUEST:
        return json_error(
            413,
            f"{len(items)} events in one request; send at most {MAX_EVENTS_PER_REQUEST}",
        )
    source = body.get("source", "api")
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        return _validation_error(
            [FieldError("source", f"{source!r} is not a source name such as api or shopify")]
        )

    results: list[dict[str, Any]] = [{} for _ in items]
    good: list[EventInput] = []
    good_index: list[int] = []
    for index, item in enumerate(items):
        parsed, errors = event_input_parse(item)
        if parsed is None:
            message = "; ".join(
                f"{_item_path(index, error.field)}: {error.message}" for error in errors
            )
            results[index] = {"index": index, "status": "rejected", "error": message}
        else:
            good.append(parsed)
            good_index.append(index)

    ingested = events_ingest(good, source=source) if good else []
    public_ids = dict(
        Contact.objects.filter(pk__in={result.contact_id for result in ingested}).values_list(
            "pk", "uuid"
        )
    )
    for index, result in zip(good_index, ingested, strict=True):
        results[index] = {
            "index": index,
            "status": result.status,
            "error": None,
            "contact": str(public_ids[result.contact_id]),
        }
    return _json({"results": results})


# --- Schema and docs -------------------------------------------------------------------------


@api_endpoint(methods=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"), authenticated=False)
def not_found(request: HttpRequest, rest: str) -> HttpResponse:
    return json_error(
        404, "no such endpoint; the endpoints are listed at /api/v1/docs and /api/v1/openapi.json"
    )


@api_endpoint(methods=("GET",), authenticated=False)
def openapi(request: HttpRequest) -> HttpResponse:
    return _json(openapi_schema())


@api_endpoint(methods=("GET",), authenticated=False)
def docs(request: HttpRequest) -> HttpResponse:
    """A page listing the endpoints from the schema; no CDN, no script."""
    schema = openapi_schema()
    rows = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            rows.append(
                (
                    method.upper(),
                    path,
                    operation.get("summary", ""),
                    operation.get("description", ""),
                )
            )
    body = format_html(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "<link rel='stylesheet' href='{stylesheet}'></head><body>"
        "<h1>{title} <small>{version}</small></h1><p>{description}</p>"
        "<p>Machine-readable schema: <a href='openapi.json'>openapi.json</a> (OpenAPI 3.1).</p>"
        "<dl>{rows}</dl></body></html>",
        title=schema["info"]["title"],
        # A file, not an inline <style>: the Content-Security-Policy refuses inline styles.
        stylesheet=static("crm/api_docs.css"),
        version=schema["info"]["version"],
        description=schema["info"]["description"],
        rows=format_html_join(
            "",
            "<dt><code>{} {}</code> — {}</dt><dd>{}</dd>",
            rows,
        ),
    )
    return HttpResponse(body, content_type="text/html; charset=utf-8")
