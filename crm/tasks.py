from __future__ import annotations

from core.tasks import shared_task
from crm.services import optin


@shared_task
def optin_expire_pending() -> int:
    return optin.optin_expire_pending()


@shared_task
def optin_send_confirmation(optin_id: int) -> bool:
    return optin.optin_send_confirmation(optin_id=optin_id)


@shared_task
def import_run_execute(import_run_id: int) -> None:
    # Imported inside: the task and the service it runs share a name.
    from crm.services.importing import import_run_execute as execute

    execute(import_run_id=import_run_id)
