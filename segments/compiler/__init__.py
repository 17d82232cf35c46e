"""Segment definitions compiled to SQL: parse the JSON tree (tree.py, validated by the
per-type forms in forms/), then compile each condition to a Q over Contact
(conditions.py). `definition_compile` is a pure function; `segment_queryset` applies it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from crm.models import Contact
from segments.compiler.conditions import condition_compile
from segments.compiler.tree import DefinitionError, definition_parse
from segments.compiler.types import Group, Node

if TYPE_CHECKING:
    from segments.models.definitions import Segment

__all__ = [
    "ContactRange",
    "DefinitionError",
    "definition_compile",
    "definition_parse",
    "node_compile",
    "segment_queryset",
]


@dataclass(frozen=True)
class ContactRange:
    """Contacts with low < id <= high (no upper end when high is None): one batch of a
    refresh."""

    low: int
    high: int | None = None

    def q(self, field: str) -> Q:
        bounds = {f"{field}__gt": self.low}
        if self.high is not None:
            bounds[f"{field}__lte"] = self.high
        return Q(**bounds)


def node_compile(node: Node, *, now: dt.datetime, contacts: Q | None = None) -> Q:
    """`contacts`, a Q over contact_id, narrows the event scans of behaviour conditions to
    those contacts; the result is then only right for them, so the caller must keep the
    outer query within them too (segment_queryset does)."""
    if not isinstance(node, Group):
        return condition_compile(node, now=now, contacts=contacts)
    parts = [node_compile(child, now=now, contacts=contacts) for child in node.children]
    if node.op == "not":
        return ~parts[0]
    combined = Q()  # an empty "and" matches every contact
    for part in parts:
        combined = (combined & part) if node.op == "and" else (combined | part)
    return combined


def definition_compile(definition: Any, *, now: dt.datetime | None = None) -> Q:
    """The Q over Contact of a stored definition; raises DefinitionError when it is not
    valid. `now` anchors the time windows (default: the current time)."""
    return node_compile(definition_parse(definition), now=now or timezone.now())


def segment_queryset(
    segment: Segment, *, now: dt.datetime | None = None, within: ContactRange | None = None
) -> QuerySet[Contact]:
    """The contacts who belong in the segment right now, erased contacts excluded; one SQL
    query however many conditions. `within` asks only about one range of contacts, and
    narrows the event scans to it as well, so that a refresh in batches reads each event
    once in all rather than once per batch."""
    now = now or timezone.now()
    node = definition_parse(segment.definition)
    if within is None:
        return Contact.objects.filter(is_erased=False).filter(node_compile(node, now=now))
    return Contact.objects.filter(within.q("id"), is_erased=False).filter(
        node_compile(node, now=now, contacts=within.q("contact_id"))
    )
