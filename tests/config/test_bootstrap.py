"""What `make run` does before it starts the processes: an admin login, periodic tasks."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.periodic import PERIODIC_TASKS


@pytest.mark.django_db
def test_first_run_creates_an_admin_and_prints_the_login(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.ADMIN_PASSWORD = ""
    out = StringIO()
    call_command("crm", "ensure-admin", stdout=out)
    password = (tmp_path / "admin-password.txt").read_text().strip()
    assert f"user: admin  password: {password}" in out.getvalue()
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)


@pytest.mark.django_db
def test_later_runs_keep_the_same_admin(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    settings.ADMIN_PASSWORD = "a-chosen-password-123"
    call_command("crm", "ensure-admin", stdout=StringIO())
    out = StringIO()
    call_command("crm", "ensure-admin", stdout=out)
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    assert "Created" not in out.getvalue()
    assert "the ADMIN_PASSWORD you set" in out.getvalue()


@pytest.mark.django_db
def test_periodic_tasks_are_declared_once_however_often_setup_runs() -> None:
    call_command("crm", "setup-periodic-tasks", stdout=StringIO())
    out = StringIO()
    call_command("crm", "setup-periodic-tasks", stdout=out)
    names = {spec["name"] for spec in PERIODIC_TASKS}
    assert set(PeriodicTask.objects.filter(enabled=True).values_list("name", flat=True)) >= names
    assert PeriodicTask.objects.filter(name__in=names).count() == len(names)
    assert "created" not in out.getvalue()


@pytest.mark.django_db
def test_a_task_no_longer_declared_is_disabled_not_deleted() -> None:
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="crm: an old job", task="crm.tasks.gone", interval=every_hour)
    call_command("crm", "setup-periodic-tasks", stdout=StringIO())
    assert PeriodicTask.objects.get(name="crm: an old job").enabled is False


def test_every_declared_periodic_task_is_a_task_the_worker_knows() -> None:
    from config.celery import app

    app.loader.import_default_modules()
    unknown = [spec["task"] for spec in PERIODIC_TASKS if spec["task"] not in app.tasks]
    assert unknown == []
