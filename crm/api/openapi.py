"""The OpenAPI 3.1 description of /api/v1/, written by hand so that it says exactly what the
views do. Served at /api/v1/openapi.json and rendered at /api/v1/docs.

Longer than our usual module on purpose: it is one document (schemas, paths, examples) that
reads top to bottom like the published spec, with almost no logic; splitting it would scatter
one endpoint's schema, examples and errors across files."""

from __future__ import annotations

import copy
from typing import Any

from crm.models import MARKETING, Channel, ConsentRecord

_ERROR = {"$ref": "#/components/schemas/Error"}
_DATETIME = {"type": "string", "format": "date-time", "examples": ["2026-03-01T09:30:00Z"]}


def _response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or _ERROR}},
    }


_UNAUTHORISED = _response("No API key, or a wrong or revoked one.")
_NOT_ALLOWED = _response("Another HTTP method than the ones listed.")
_INVALID = _response(
    "The body is not JSON, nests arrays and objects more than 32 levels deep, or a field is "
    "not valid; `errors` names each field at fault. Not valid anywhere, names and nested "
    "values included: `\\u0000`, a lone surrogate such as `\\ud800`, NaN, Infinity, "
    "integers of more than 20 digits and numbers too large to be finite (`1e999`).",
    {"$ref": "#/components/schemas/ValidationError"},
)
_RATE_LIMITED = {
    **_response(
        "Over the key's sustained rate (API_RATE_SUSTAINED, default 600/m) or burst "
        "(API_RATE_BURST, default 60/s), counted per key across every endpoint. Nothing was "
        "done; retry after the seconds in Retry-After (also in the body as `retry_after`)."
    ),
    "headers": {
        "Retry-After": {
            "description": "Seconds until the key may call again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

_CONTACT_FIELDS: dict[str, Any] = {
    "external_id": {
        "type": ["string", "null"],
        "maxLength": 255,
        "description": "Your own customer id; identifies the contact first.",
        "examples": ["CUST-10042"],
    },
    "email": {
        "type": ["string", "null"],
        "format": "email",
        "description": "Identifies the contact second; matched case-insensitively.",
        "examples": ["ada@example.com"],
    },
    "phone": {
        "type": ["string", "null"],
        "description": "Any formatting; stored as E.164. Identifies the contact third.",
        "examples": ["+1 (415) 555-0123"],
    },
}

_PROFILE_FIELDS: dict[str, Any] = {
    "first_name": {"type": ["string", "null"], "maxLength": 150, "examples": ["Ada"]},
    "last_name": {"type": ["string", "null"], "maxLength": 150, "examples": ["Lovelace"]},
    "timezone": {
        "type": ["string", "null"],
        "description": "IANA time zone.",
        "examples": ["Europe/Paris"],
    },
    "locale": {"type": ["string", "null"], "examples": ["en-GB"]},
    "country": {
        "type": ["string", "null"],
        "description": "ISO 3166 alpha-2.",
        "examples": ["FR"],
    },
    "attributes": {
        "type": ["object", "null"],
        "description": "Merged into the stored attributes; a key set to null is removed.",
        "examples": [{"plan": "pro", "loyalty_points": 120}],
    },
}

# --- The Segment-compatible endpoints (crm/api/segment.py) -----------------------------------

_SEGMENT_COMMON = (
    " The Segment-compatible endpoints (/track, /identify, /page, /screen, /alias, /batch) "
    "also take the key as the HTTP Basic username with an empty password, or as `writeKey` "
    "in the body, and read gzip bodies (`Content-Encoding: gzip`); a call is at most 32 KB "
    "and a batch 500 KB, both measured decompressed. A person is named by `userId` (the "
    "contact's external id) or, before anyone knows who they are, by `anonymousId` (a contact "
    "with external id `anonymous:<anonymousId>`); a call carrying both merges the anonymous "
    "contact, history included, into the identified one. `messageId` deduplicates track, "
    "page and screen calls. Fields of the spec that Cadence does not use (`context`, "
    "`integrations`, `channel`, ...) are accepted and not stored."
)
_SEGMENT_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"basicAuth": []}]
_SEGMENT_ID = {"type": ["string", "integer", "null"], "maxLength": 255}
_SEGMENT_FIELDS: dict[str, Any] = {
    "type": {
        "enum": ["track", "page", "screen", "identify", "alias"],
        "description": "Required in a batch; elsewhere, when given, it must match the endpoint.",
    },
    "userId": {
        **_SEGMENT_ID,
        "description": "The contact's external id. userId or anonymousId is required.",
        "examples": ["CUST-10042"],
    },
    "anonymousId": {
        **_SEGMENT_ID,
        "maxLength": 245,
        "description": "A visitor not yet identified (a cookie id).",
        "examples": ["8f1c7a52-1b7e-4a5b-9e53-2f0a1d5c0e11"],
    },
    "messageId": {
        **_SEGMENT_ID,
        "description": "The call's own id; a replay with the same one is a duplicate.",
        "examples": ["ajs-6f1c0c1d4f0b"],
    },
    "timestamp": {
        **_DATETIME,
        "description": "When it happened, used as given. Default: see originalTimestamp.",
    },
    "originalTimestamp": {
        **_DATETIME,
        "description": (
            "The device's time of the call, corrected for its clock as Segment does: "
            "received - (sentAt - originalTimestamp). Without either time, the time received."
        ),
    },
    "sentAt": {**_DATETIME, "description": "The device's time of sending (or the batch's)."},
    "context": {"type": ["object", "null"], "description": "Accepted, not stored."},
    "integrations": {"type": ["object", "null"], "description": "Accepted, not stored."},
}
_SEGMENT_CALLS: dict[str, dict[str, Any]] = {
    "track": {
        "summary": "Record an event (Segment track)",
        "description": (
            "Recorded as an event whose type is `event` in lowercase with every run of other "
            "characters than letters and digits made one underscore: `Order Completed` is "
            "`order_completed`. `properties` are kept as sent; `properties.revenue` (else "
            "`value`, else `total`) is the event's value and `properties.currency` its currency."
        ),
        "required": ["event"],
        "properties": {
            "event": {"type": "string", "maxLength": 100, "examples": ["Order Completed"]},
            "properties": {
                "type": ["object", "null"],
                "examples": [{"order_id": "A-1001", "revenue": 42.5, "currency": "EUR"}],
            },
        },
    },
    "page": {
        "summary": "Record a page view (Segment page)",
        "description": (
            "Recorded as a `page_viewed` event; `name` and `category` join its properties."
        ),
        "required": [],
        "properties": {
            "name": {"type": ["string", "null"], "examples": ["Pricing"]},
            "category": {"type": ["string", "null"], "examples": ["Docs"]},
            "properties": {
                "type": ["object", "null"],
                "examples": [{"path": "/pricing", "title": "Pricing", "url": "https://..."}],
            },
        },
    },
    "screen": {
        "summary": "Record a screen view (Segment screen)",
        "description": "Recorded as a `screen_viewed` event, like page.",
        "required": [],
        "properties": {
            "name": {"type": ["string", "null"], "examples": ["Checkout"]},
            "properties": {"type": ["object", "null"]},
        },
    },
    "identify": {
        "summary": "Create or update a contact (Segment identify)",
        "description": (
            "Upserts the contact of userId; without one, the contact of the email or phone "
            "trait (the anonymous visitor is then merged into it), else the anonymous "
            "visitor's own. Traits `email`, `phone`, "
            "`firstName`/`first_name`, `lastName`/`last_name` and `name` (split at its first "
            "space when no first or last name is given) are contact fields, checked as in "
            "POST /contacts; every other trait is kept in the contact's attributes (null "
            "removes one). Consent is not changed: record it with POST /contacts. A replay "
            "changes nothing and answers `changed: false`."
        ),
        "required": [],
        "properties": {
            "traits": {
                "type": ["object", "null"],
                "examples": [{"email": "ada@example.com", "firstName": "Ada", "plan": "pro"}],
            }
        },
    },
    "alias": {
        "summary": "Tie a previous id to a user (Segment alias)",
        "description": (
            "The contact holding previousId (as a user id or an anonymous id) is merged into "
            "the contact of userId, history included; a previousId nobody holds yet becomes "
            "an alias, so that its later calls land on that contact."
        ),
        "required": ["previousId", "userId"],
        "properties": {"previousId": {**_SEGMENT_ID, "examples": ["8f1c7a52-..."]}},
    },
}


def _segment_schema(kind: str) -> dict[str, Any]:
    call = _SEGMENT_CALLS[kind]
    return {
        "type": "object",
        "required": call["required"],
        "properties": {
            **_SEGMENT_FIELDS,
            **call["properties"],
            "writeKey": {"type": "string", "description": "The API key, if not in a header."},
        },
    }


def _segment_operation(kind: str, summary: str, description: str, schema: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": f"segment{kind.capitalize()}",
            "summary": summary,
            "description": description,
            "security": _SEGMENT_SECURITY,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": schema}}},
            },
            "responses": {
                "200": _response(
                    "One result per call.", {"$ref": "#/components/schemas/SegmentResults"}
                ),
                "400": _INVALID,
                "401": _UNAUTHORISED,
                "405": _NOT_ALLOWED,
                "413": _response("A call larger than 32 KB or a batch larger than 500 KB."),
                "415": _response("A Content-Encoding other than gzip."),
                "429": _RATE_LIMITED,
            },
        }
    }


_SEGMENT_PATHS = {
    **{
        f"/{kind}": _segment_operation(
            kind,
            call["summary"],
            call["description"],
            f"#/components/schemas/Segment{kind.capitalize()}",
        )
        for kind, call in _SEGMENT_CALLS.items()
    },
    "/batch": _segment_operation(
        "batch",
        "Send many calls at once (Segment batch)",
        (
            "Each call of `batch` names its `type`; each gets a result in order, and a "
            "rejected one (its error names it, e.g. `batch[3].traits.email: ...`) never "
            "rejects the others. The batch's `sentAt` applies to calls without their own. "
            "This is where Segment's and RudderStack's libraries post (host + /v1/batch)."
        ),
        "#/components/schemas/SegmentBatch",
    ),
}
_SEGMENT_SCHEMAS: dict[str, Any] = {
    **{f"Segment{kind.capitalize()}": _segment_schema(kind) for kind in _SEGMENT_CALLS},
    "SegmentBatch": {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {
                "type": "array",
                "items": {
                    "oneOf": [
                        {"$ref": f"#/components/schemas/Segment{kind.capitalize()}"}
                        for kind in _SEGMENT_CALLS
                    ]
                },
            },
            "sentAt": _SEGMENT_FIELDS["sentAt"],
            "writeKey": {"type": "string", "description": "The API key, if not in a header."},
            "context": _SEGMENT_FIELDS["context"],
        },
    },
    "SegmentResults": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "error": {
                "type": "string",
                "description": "Only on a single call that was rejected (status 400).",
            },
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "status", "error"],
                    "properties": {
                        "index": {"type": "integer"},
                        "status": {"enum": ["accepted", "duplicate", "rejected"]},
                        "error": {
                            "type": ["string", "null"],
                            "examples": ["batch[2].timestamp: must be ISO 8601 with a zone"],
                        },
                        "contact": {"type": ["string", "null"], "format": "uuid"},
                        "changed": {
                            "type": "boolean",
                            "description": "identify only: whether the contact changed.",
                        },
                    },
                },
            },
        },
    },
}


_SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Cadence ingestion API",
        "version": "1.0.0",
        "description": (
            "Send contacts and what they do (events) to Cadence. Authenticate with an API key "
            "created by `python manage.py crm create-api-key NAME`, sent as "
            "`Authorization: Bearer <key>`. Bodies and answers are JSON; times are ISO 8601 "
            "with a zone and come back in UTC. Each key has a sustained rate and a burst over "
            "all endpoints together; beyond either a request answers 429 with a Retry-After "
            "header (seconds). An unknown path or contact id answers a JSON 404." + _SEGMENT_COMMON
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": {
        "/contacts": {
            "post": {
                "operationId": "contactsUpsert",
                "summary": "Create or update a contact",
                "description": (
                    "Identifies the contact by external_id, then email, then phone (addresses "
                    "of merged contacts included) and creates it when none matches. Absent or "
                    "null fields are left as they are; an empty string clears a field. Consent "
                    "entries are recorded with source `api`, the request's IP address and user "
                    "agent, only when they change the current status; a grant the person withdrew "
                    "themselves, or to a suppressed or erased address, is refused and "
                    "reported in `consent`."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ContactIn"}}
                    },
                },
                "responses": {
                    "200": _response(
                        "An existing contact was found (and updated if anything differed).",
                        {"$ref": "#/components/schemas/UpsertResult"},
                    ),
                    "201": _response(
                        "A new contact was created.", {"$ref": "#/components/schemas/UpsertResult"}
                    ),
                    "400": _INVALID,
                    "401": _UNAUTHORISED,
                    "405": _NOT_ALLOWED,
                    "429": _RATE_LIMITED,
                    "413": _response("The body is larger than 1 MB."),
                },
            },
            "get": {
                "operationId": "contactsLookup",
                "summary": "Find a contact by email, phone or external id",
                "description": (
                    "Give exactly one parameter. The email matches in any case and the phone "
                    "in any formatting; addresses of contacts merged into another one find "
                    "the survivor. Erased contacts are never returned."
                ),
                "parameters": [
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "examples": {"example": {"value": example}},
                    }
                    for name, example in (
                        ("email", "ADA@example.com"),
                        ("phone", "(415) 555-0123"),
                        ("external_id", "CUST-10042"),
                    )
                ],
                "responses": {
                    "200": _response(
                        "The matching contacts (none or one).",
                        {
                            "type": "object",
                            "required": ["results"],
                            "properties": {
                                "results": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Contact"},
                                }
                            },
                        },
                    ),
                    "400": _INVALID,
                    "401": _UNAUTHORISED,
                    "405": _NOT_ALLOWED,
                    "429": _RATE_LIMITED,
                },
            },
        },
        "/contacts/{id}": {
            "get": {
                "operationId": "contactGet",
                "summary": "A contact's profile, current consent and latest events",
                "description": (
                    "The 50 most recent events, newest first. An erased contact answers 410 "
                    "with only its id and when it was erased. The id of a contact merged into "
                    "another one answers 404 with `merged_into`, the survivor's id."
                ),
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    }
                ],
                "responses": {
                    "200": _response(
                        "The contact.", {"$ref": "#/components/schemas/ContactDetail"}
                    ),
                    "401": _UNAUTHORISED,
                    "404": _response(
                        "No contact has this id, or the id is not a UUID (see `merged_into` "
                        "when it was merged).",
                        {
                            "allOf": [
                                _ERROR,
                                {
                                    "type": "object",
                                    "properties": {
                                        "merged_into": {"type": "string", "format": "uuid"}
                                    },
                                },
                            ]
                        },
                    ),
                    "405": _NOT_ALLOWED,
                    "429": _RATE_LIMITED,
                    "410": _response(
                        "The contact was erased on request.",
                        {"$ref": "#/components/schemas/ErasedContact"},
                    ),
                },
            }
        },
        "/events": {
            "post": {
                "operationId": "eventsIngest",
                "summary": "Record a batch of events",
                "description": (
                    "At most 1,000 events per request. Each event gets a result in request "
                    "order: `accepted`, `duplicate` (its id was already recorded for this "
                    "source, or appears earlier in the batch: nothing changes) or `rejected` "
                    "(the error names the field, e.g. `events[3].occurred_at: ...`). A "
                    "rejected event never rejects the others, whatever it holds: an "
                    "unstorable character or number anywhere in it rejects it alone. A "
                    "contact an event names is created when it does not exist. Each "
                    "contact's last activity (any event) and last purchase "
                    "(`order_completed`) follow occurred_at forward only."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}
                    },
                },
                "responses": {
                    "200": _response(
                        "One result per event.", {"$ref": "#/components/schemas/EventResults"}
                    ),
                    "400": _INVALID,
                    "401": _UNAUTHORISED,
                    "405": _NOT_ALLOWED,
                    "429": _RATE_LIMITED,
                    "413": _response("More than 1,000 events, or a body larger than 16 MB."),
                },
            }
        },
        **_SEGMENT_PATHS,
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This schema",
                "security": [],
                "responses": {"200": _response("OpenAPI 3.1 document.", {"type": "object"})},
            }
        },
        "/docs": {
            "get": {
                "operationId": "docs",
                "summary": "A page listing the endpoints",
                "security": [],
                "responses": {
                    "200": {
                        "description": "HTML page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from `python manage.py crm create-api-key NAME`.",
            },
            "basicAuth": {
                "type": "http",
                "scheme": "basic",
                "description": (
                    "The API key as the username with an empty password (Segment endpoints "
                    "only), as Segment's and RudderStack's libraries send their write key."
                ),
            },
        },
        "schemas": {
            **_SEGMENT_SCHEMAS,
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "ValidationError": {
                "type": "object",
                "required": ["error", "errors"],
                "properties": {
                    "error": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "message"],
                            "properties": {
                                "field": {
                                    "type": "string",
                                    "examples": ["email", "consent[0].channel"],
                                },
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "ConsentIn": {
                "type": "object",
                "required": ["channel", "status"],
                "additionalProperties": False,
                "properties": {
                    "channel": {"enum": Channel.values},
                    "purpose": {"type": "string", "default": MARKETING, "maxLength": 64},
                    "status": {"enum": ConsentRecord.Status.values},
                    "text": {
                        "type": "string",
                        "description": "The words the person agreed to, as shown.",
                    },
                    "text_version": {"type": "string", "examples": ["signup-2026-01"]},
                },
            },
            "ContactIn": {
                "type": "object",
                "description": "At least one of external_id, email or phone.",
                "additionalProperties": False,
                "anyOf": [
                    {"required": ["external_id"]},
                    {"required": ["email"]},
                    {"required": ["phone"]},
                ],
                "properties": {
                    **_CONTACT_FIELDS,
                    **_PROFILE_FIELDS,
                    "consent": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/ConsentIn"},
                    },
                },
            },
            "UpsertResult": {
                "type": "object",
                "required": ["id", "created", "changed", "consent"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "created": {"type": "boolean"},
                    "changed": {
                        "type": "boolean",
                        "description": "False when the request changed nothing (a replay).",
                    },
                    "consent": {
                        "type": "array",
                        "description": "One outcome per consent entry sent, in order.",
                        "items": {"$ref": "#/components/schemas/ConsentOutcome"},
                    },
                },
            },
            "ConsentOutcome": {
                "type": "object",
                "required": ["channel", "purpose", "status"],
                "properties": {
                    "channel": {"enum": Channel.values},
                    "purpose": {"type": "string"},
                    "status": {
                        "enum": ["recorded", "unchanged", "refused"],
                        "description": "recorded: appended to the consent ledger; unchanged: "
                        "already the current status, nothing appended; refused: not recorded, "
                        "see reason.",
                    },
                    "reason": {
                        "enum": ["withdrawn_by_contact", "suppressed", "erased"],
                        "description": "Only when refused. withdrawn_by_contact: the person "
                        "withdrew consent themselves and only they can give it back (double "
                        "opt-in, preference centre, SMS START); suppressed: the address is on "
                        "the suppression list; erased: the address of a person erased on "
                        "request.",
                    },
                },
            },
            "Contact": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "external_id": {"type": ["string", "null"]},
                    "email": {"type": ["string", "null"]},
                    "phone": {"type": ["string", "null"], "description": "E.164"},
                    "first_name": {"type": "string"},
                    "last_name": {"type": "string"},
                    "timezone": {"type": "string"},
                    "locale": {"type": "string"},
                    "country": {"type": "string"},
                    "attributes": {"type": "object"},
                    "created_at": _DATETIME,
                    "updated_at": _DATETIME,
                    "last_activity_at": {**_DATETIME, "type": ["string", "null"]},
                    "last_purchase_at": {**_DATETIME, "type": ["string", "null"]},
                },
            },
            "ConsentState": {
                "type": "object",
                "properties": {
                    "channel": {"enum": Channel.values},
                    "purpose": {"type": "string"},
                    "status": {"enum": ConsentRecord.Status.values},
                    "source": {"type": "string", "examples": ["api", "form", "sms_keyword"]},
                    "at": _DATETIME,
                },
            },
            "EventOut": {
                "type": "object",
                "properties": {
                    "id": {"type": ["string", "null"], "description": "The id the client gave."},
                    "type": {"type": "string"},
                    "occurred_at": _DATETIME,
                    "received_at": _DATETIME,
                    "source": {"type": "string"},
                    "properties": {"type": "object"},
                    "value": {
                        "type": ["string", "null"],
                        "description": "A decimal as a string, to keep its exact value.",
                        "examples": ["42.50"],
                    },
                    "currency": {"type": "string"},
                },
            },
            "ContactDetail": {
                "allOf": [
                    {"$ref": "#/components/schemas/Contact"},
                    {
                        "type": "object",
                        "properties": {
                            "erased": {"const": False},
                            "consent": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/ConsentState"},
                            },
                            "events": {
                                "type": "array",
                                "maxItems": 50,
                                "items": {"$ref": "#/components/schemas/EventOut"},
                            },
                        },
                    },
                ]
            },
            "ErasedContact": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "erased": {"const": True},
                    "erased_at": {**_DATETIME, "type": ["string", "null"]},
                },
            },
            "EventIn": {
                "type": "object",
                "required": ["type", "occurred_at", "contact"],
                "additionalProperties": False,
                "properties": {
                    "id": {
                        "type": ["string", "integer"],
                        "description": "Your id of the event; a replay with it is a duplicate.",
                        "examples": ["order-7781"],
                    },
                    "type": {
                        "type": "string",
                        "maxLength": 100,
                        "examples": ["product_viewed", "order_completed", "page_viewed"],
                    },
                    "occurred_at": {
                        **_DATETIME,
                        "description": (
                            "With a zone (Z or +02:00); from 1970-01-01T00:00:00Z to a day ahead."
                        ),
                    },
                    "contact": {
                        "type": "object",
                        "additionalProperties": False,
                        "anyOf": [
                            {"required": ["external_id"]},
                            {"required": ["email"]},
                            {"required": ["phone"]},
                        ],
                        "properties": _CONTACT_FIELDS,
                    },
                    "properties": {
                        "type": "object",
                        "examples": [{"product_id": "SKU-1", "product_name": "Blue mug"}],
                    },
                    "value": {
                        "type": ["number", "string", "null"],
                        "description": "Rounded to 2 decimals.",
                        "examples": [42.5],
                    },
                    "currency": {"type": "string", "examples": ["EUR"]},
                },
            },
            "EventBatch": {
                "type": "object",
                "required": ["events"],
                "properties": {
                    "events": {
                        "type": "array",
                        "maxItems": 1000,
                        "items": {"$ref": "#/components/schemas/EventIn"},
                    },
                    "source": {
                        "type": "string",
                        "pattern": "^[a-z0-9][a-z0-9_.-]{0,49}$",
                        "default": "api",
                        "description": "Where the events come from; ids are unique per source.",
                        "examples": ["shopify"],
                    },
                },
            },
            "EventResults": {
                "type": "object",
                "required": ["results"],
                "properties": {
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["index", "status", "error"],
                            "properties": {
                                "index": {"type": "integer"},
                                "status": {"enum": ["accepted", "duplicate", "rejected"]},
                                "error": {
                                    "type": ["string", "null"],
                                    "examples": [
                                        "events[3].occurred_at: '2026-13-01' is not an ISO "
                                        "8601 date and time (e.g. 2026-03-01T09:30:00Z)"
                                    ],
                                },
                                "contact": {
                                    "type": "string",
                                    "format": "uuid",
                                    "description": "The contact's id (not on rejected events).",
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


def openapi_schema() -> dict[str, Any]:
    """A fresh copy: callers may not change the one the module holds."""
    return copy.deepcopy(_SCHEMA)
