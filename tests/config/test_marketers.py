"""The Marketers group gets what config/marketers.py declares, after any migrate or flush."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from config.marketers import MARKETER_PERMISSIONS, MARKETERS_GROUP


def _declared() -> set[str]:
    return {
        f"{app}.{action}_{model}"
        for app, models in MARKETER_PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    }


@pytest.mark.django_db
def test_the_marketers_group_has_every_declared_permission() -> None:
    group = Group.objects.get(name=MARKETERS_GROUP)
    held = {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }
    assert held >= _declared()
    assert not any(codename.startswith("crm.delete_contact") for codename in held)


@pytest.mark.django_db(transaction=True)
def test_the_group_comes_back_after_a_flush() -> None:
    call_command("flush", interactive=False, verbosity=0)
    assert Group.objects.get(name=MARKETERS_GROUP).permissions.count() == len(_declared())
