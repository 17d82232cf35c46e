"""Write the periodic tasks declared in config/periodic.py into django-celery-beat's tables.

Idempotent: a second run changes nothing; a changed schedule is updated in place; a task no
longer declared is disabled (not deleted, so its history in admin stays)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.periodic import PERIODIC_TASKS

HELP = "Declare the system's periodic tasks for Celery beat (idempotent)."


@transaction.atomic
def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    declared = set()
    for spec in PERIODIC_TASKS:
        declared.add(spec["name"])
        defaults: dict[str, Any] = {
            "task": spec["task"],
            "description": spec["description"],
            "enabled": True,
            "kwargs": json.dumps({}),
            "crontab": None,
            "interval": None,
        }
        if spec["crontab"]:
            fields = spec["crontab"].split()
            if len(fields) != 5:
                raise CommandError(f"{spec['name']}: crontab {spec['crontab']!r} needs 5 fields")
            minute, hour, day_of_month, month_of_year, day_of_week = fields
            defaults["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
                timezone="UTC",
            )
        elif spec["every_seconds"]:
            defaults["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=spec["every_seconds"], period=IntervalSchedule.SECONDS
            )
        else:
            raise CommandError(f"{spec['name']}: give a crontab or every_seconds")
        task, created = PeriodicTask.objects.get_or_create(name=spec["name"], defaults=defaults)
        changed = [key for key, value in defaults.items() if getattr(task, key) != value]
        if changed and not created:
            for key in changed:
                setattr(task, key, defaults[key])
            task.save()
        verb = "created" if created else ("updated" if changed else "unchanged")
        command.stdout.write(f"  {verb:9} {spec['name']} → {spec['task']}")
    stale = PeriodicTask.objects.filter(
        name__regex=r"^(crm|segments|campaigns|triggers):", enabled=True
    ).exclude(name__in=declared)
    for task in stale:
        task.enabled = False
        task.save()
        command.stdout.write(f"  disabled  {task.name} (no longer declared)")
    command.stdout.write(command.style.SUCCESS(f"{len(declared)} periodic tasks declared."))
