"""Add the contact to, or remove it from, a static list (segments.StaticList)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from django import forms

from triggers.actions.base import ActionError, ActionType, actions

if TYPE_CHECKING:
    from segments.models import StaticList
    from triggers.models import TriggerFiring


class ListSlugField(forms.SlugField):
    def validate(self, value: Any) -> None:
        from segments.models import StaticList

        super().validate(value)
        if value and not StaticList.objects.filter(slug=value).exists():
            raise forms.ValidationError(f"no static list with the slug {value!r}.")


class ListOptions(TypedDict):
    """e.g. {"list": "vip-callback"}"""

    list: str  # a static list's slug


class AddToListResult(TypedDict):
    list: str
    added: bool  # False when the contact was already on the list


class RemoveFromListResult(TypedDict):
    list: str
    removed: bool  # False when the contact was not on the list


class ListForm(forms.Form):
    list = ListSlugField(help_text="A static list's slug, e.g. vip-callback")


def _list(slug: str) -> StaticList:
    from segments.models import StaticList

    found = StaticList.objects.filter(slug=slug).first()
    if found is None:
        raise ActionError(f"static list {slug!r} no longer exists")
    return found


@actions.register
class AddToList(ActionType[ListOptions, AddToListResult]):
    id = "add_to_list"
    database_only = True
    label = "add to the static list {list}"
    form = ListForm

    def options(self, stored: Mapping[str, Any]) -> ListOptions:
        return ListOptions(list=stored["list"])

    def run(
        self, options: ListOptions, *, firing: TriggerFiring, contact_id: int
    ) -> AddToListResult:
        from segments.models import StaticListMember

        _, created = StaticListMember.objects.get_or_create(
            static_list=_list(options["list"]),
            contact_id=contact_id,
            defaults={"added_by_firing_id": firing.pk},
        )
        return {"list": options["list"], "added": created}


@actions.register
class RemoveFromList(ActionType[ListOptions, RemoveFromListResult]):
    id = "remove_from_list"
    database_only = True
    label = "remove from the static list {list}"
    form = ListForm

    def options(self, stored: Mapping[str, Any]) -> ListOptions:
        return ListOptions(list=stored["list"])

    def run(
        self, options: ListOptions, *, firing: TriggerFiring, contact_id: int
    ) -> RemoveFromListResult:
        from segments.models import StaticListMember

        removed, _ = StaticListMember.objects.filter(
            static_list=_list(options["list"]), contact_id=contact_id
        ).delete()
        return {"list": options["list"], "removed": bool(removed)}
