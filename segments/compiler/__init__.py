"""Segment definitions compiled to SQL: parse the JSON tree (tree.py, validated by the
per-type forms in forms.py), then compile each condition to a Q over Contact
(conditions.py). `definition_compile` is a pure function; `segment_queryset` applies it."""

from __future__ import annotations

import datetime as dt
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
    "DefinitionError",
    "definition_compile",
    "definition_parse",
    "node_compile",
    "segment_queryset",
]


def node_compile(node: Node, *, now: dt.datetime) -> Q:
    if not isinstance(node, Group):
        return condition_compile(node, now=now)
    parts = [node_compile(child, now=now) for child in node.children]
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


def segment_queryset(segment: Segment, *, now: dt.datetime | None = None) -> QuerySet[Contact]:
    """The contacts who belong in the segment right now, erased contacts excluded; one SQL
    query however many conditions."""
    return Contact.objects.filter(is_erased=False).filter(
        definition_compile(segment.definition, now=now)
    )
