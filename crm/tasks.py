from __future__ import annotations

from celery import shared_task

from crm.services import optin


@shared_task
def optin_expire_pending() -> int:
    return optin.optin_expire_pending()
