"""Celery's `shared_task`, typed as what every task of this project is at runtime.

config/celery.py makes DjangoTask the app's task class, so each task has
`delay_on_commit()` and `apply_async_on_commit()` (published once the caller's transaction
commits). Celery's own decorator is typed as returning a plain Task; this one keeps the
function's parameters and result and the DjangoTask methods, so mypy checks both the
arguments a caller enqueues and that it enqueues after commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from celery import shared_task as celery_shared_task
from celery.contrib.django.task import DjangoTask

P = ParamSpec("P")
R = TypeVar("R")


def shared_task(fun: Callable[P, R]) -> DjangoTask[P, R]:
    """Register `fun` as a task of whichever Celery app is current (as Celery's own)."""
    return cast("DjangoTask[P, R]", celery_shared_task(base=DjangoTask)(fun))
