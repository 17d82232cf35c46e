"""Every periodic task the system needs, declared in code.

`python manage.py setup_periodic_tasks` writes these into django-celery-beat's tables
(idempotently) so that beat's DatabaseScheduler runs them and marketers can see them in
admin. Task names are strings so this layer imports no app.
"""

from __future__ import annotations

from typing import TypedDict


class PeriodicTaskSpec(TypedDict):
    name: str  # unique, shown in admin
    task: str  # the Celery task's dotted name
    # A crontab ("minute hour day_of_month month_of_year day_of_week") or every N seconds.
    crontab: str | None
    every_seconds: int | None
    description: str


PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    {
        "name": "crm: expire unconfirmed double opt-in requests",
        "task": "crm.tasks.optin_expire_pending",
        "crontab": "17 * * * *",
        "every_seconds": None,
        "description": "Expires subscribe requests whose confirmation link was never used.",
    },
]
