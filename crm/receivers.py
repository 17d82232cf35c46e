"""Signal receivers of crm; CrmConfig.ready() imports this module, the decorators connect them."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from config.marketers import MARKETER_PERMISSIONS, MARKETERS_GROUP


@receiver(post_migrate, dispatch_uid="crm.marketers_group_ensure")
def marketers_group_ensure(sender: AppConfig, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """After each app migrates (auth has created its permissions by then), give the
    Marketers group that app's permissions from config/marketers.py. Idempotent; it never
    takes a permission away, so a change made by hand in admin survives."""
    spec = MARKETER_PERMISSIONS.get(sender.label)
    if not spec:
        return
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.using(using).get_or_create(name=MARKETERS_GROUP)
    codenames = [f"{action}_{model}" for model, actions in spec.items() for action in actions]
    permissions = Permission.objects.using(using).filter(
        content_type__app_label=sender.label, codename__in=codenames
    )
    group.permissions.add(*permissions)
