"""Admin building blocks shared by the apps."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

_ModelT = TypeVar("_ModelT", bound=Model)


class ReadOnlyPermissions:
    """No add, change or delete, for a ModelAdmin or an inline alike: `obj` is optional
    because ModelAdmin asks `has_add_permission(request)` and an inline passes the parent."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyModelAdmin(ReadOnlyPermissions, admin.ModelAdmin[_ModelT]):
    """Records the system writes (deliveries, responses, derived analytics): staff read them
    in admin, nobody adds, edits or deletes them there."""


def row_for_url(queryset: QuerySet[_ModelT], object_id: str) -> _ModelT | None:
    """The row an admin URL's object id names, or None when the id is not a number (a
    mistyped URL) or no row has it: the view then answers 404 or its own page."""
    return queryset.filter(pk=object_id).first() if object_id.isdigit() else None
