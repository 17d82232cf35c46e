"""Start a real Celery worker process against the test database and a broker, for tests that
must prove work crosses a process boundary (not eager mode)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from devtools import processes

ROOT = Path(__file__).resolve().parents[1]


def child_process_env(*, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker or beat a test starts: this session's database and broker,
    its own VAR_DIR, the log level this session runs at, and `extra` on top."""
    return processes.child_env(
        var_dir=var_dir, **{"LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"), **extra}
    )


@contextmanager
def celery_worker(
    *, tmp_path: Path, queues: str = "default,dispatch,evaluation,webhooks", **env: str
) -> Iterator[str]:
    """Yields the broker URL the worker consumes from: the one this test process publishes
    to (settings.CELERY_BROKER_URL: a SQLite file under the test VAR_DIR, or CI's Redis),
    emptied first. The worker writes its outboxes under tmp_path/outbox."""
    broker = str(settings.CELERY_BROKER_URL)
    outboxes = {
        "EMAIL_BACKEND": "campaigns.channels.email_file.EmlFileBackend",
        "EMAIL_OUTBOX_DIR": str(tmp_path / "outbox" / "email"),
        "SMS_BACKEND": "file",
        "SMS_OUTBOX_FILE": str(tmp_path / "outbox" / "sms.jsonl"),
    }
    # `env` may replace the outboxes (a test that sends through the fake provider).
    with processes.celery_worker(
        log=tmp_path / "worker.log",
        queues=queues,
        concurrency=1,
        hostname=f"test-{os.getpid()}@%h",
        var_dir=tmp_path / "worker-var",
        **{"CELERY_BROKER_URL": broker, **outboxes, **env},
    ):
        yield broker


@contextmanager
def tasks_eager(eager: bool = True) -> Iterator[None]:
    """Celery tasks run in this process when published (or, with eager=False, go to the
    broker). Set on the app's own overrides and removed afterwards, never written back: a
    written-back value would pin task_always_eager for every later test."""
    from config.celery import app

    changes = app.conf.changes
    assert changes is not None  # the app's own overrides exist once it is configured
    had, before = "task_always_eager" in changes, changes.get("task_always_eager")
    changes["task_always_eager"] = eager
    try:
        yield
    finally:
        if had:
            changes["task_always_eager"] = before
        else:
            changes.pop("task_always_eager", None)


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
