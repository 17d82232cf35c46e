"""A Celery worker process the fault tests can kill, and builders for a campaign of many."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings

from campaigns.models import Campaign, Delivery
from crm.models import ConsentRecord, Contact
from tests.campaigns.dispatch_helpers import campaign_for, provider_env
from tests.worker import ROOT, test_database_url


def contacts_with_consent(count: int, *, prefix: str = "fault") -> list[Contact]:
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                email=f"{prefix}{i}@example.com",
                email_key=f"{prefix}{i}@example.com",
                first_name=f"P{i}",
                timezone="Europe/Paris",
                country="FR",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                contact=c,
                channel="email",
                purpose="marketing",
                status="granted",
                source="form",
                text="Send me offers.",
                text_version="test-1",
            )
            for c in contacts
        ],
        batch_size=2000,
    )
    return contacts


def broadcast(contacts: list[Contact]) -> Campaign:
    return campaign_for(contacts, kind=Campaign.Kind.BROADCAST)


class Worker:
    """One worker process with the solo pool, so SIGKILL takes the whole worker at once
    (a prefork child would outlive its parent for a moment and keep sending)."""

    def __init__(self, tmp_path: Path, fake_url: str, *, queues: str = "dispatch", **env: str):
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
            "VAR_DIR": str(tmp_path / "worker-var"),
            **provider_env(fake_url),
            **env,
        }
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.queues = queues
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Worker:
        self.starts += 1
        log = (self.tmp_path / f"worker-{self.starts}.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                f"--queues={self.queues}",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                f"--hostname=fault-{os.getpid()}-{self.starts}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def purge(queues: str = "dispatch") -> None:
    from config.celery import app as celery_app

    with celery_app.connection_for_write(str(settings.CELERY_BROKER_URL)) as conn:
        for queue in queues.split(","):
            conn.default_channel.queue_purge(queue)


def accepted_per_address(fake: Any) -> Counter[str]:
    return Counter(r.json()["To"] for r in fake.requests if r.path == "/email")


def statuses(campaign: Campaign) -> Counter[str]:
    return Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
