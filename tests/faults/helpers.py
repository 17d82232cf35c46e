"""A Celery worker process the fault tests can kill, and builders for a campaign of many."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from campaigns.models import Campaign, Delivery
from crm.models import ConsentRecord, Contact
from devtools.processes import celery_worker_command
from tests.campaigns.dispatch_helpers import campaign_for, provider_env
from tests.worker import ROOT, child_process_env


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


class ChildProcess:
    """A process a fault test starts, SIGKILLs (no chance to clean up) or stops."""

    process: subprocess.Popen[bytes] | None = None

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


class Worker(ChildProcess):
    """One worker process with the solo pool, so SIGKILL takes the whole worker at once
    (a prefork child would outlive its parent for a moment and keep sending)."""

    def __init__(
        self,
        tmp_path: Path,
        fake_url: str,
        *,
        queues: str = "dispatch",
        name: str = "fault",
        **env: str,
    ):
        self.tmp_path = tmp_path
        self.name = name
        self.env = child_process_env(
            var_dir=tmp_path / "worker-var", **{**provider_env(fake_url), **env}
        )
        self.queues = queues
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Worker:
        self.starts += 1
        log = (self.tmp_path / f"{self.log_prefix}{self.starts}.log").open("w")
        self.process = subprocess.Popen(
            celery_worker_command(
                queues=self.queues,
                hostname=f"{self.name}-{os.getpid()}-{self.starts}@%h",
                options=("--pool=solo",),
            ),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def log_prefix(self) -> str:
        # "worker-" for the default name, as the first fault tests expect.
        return "worker-" if self.name == "fault" else f"worker-{self.name}-"

    def logs(self) -> str:
        return "".join(
            path.read_text(errors="replace")
            for path in sorted(self.tmp_path.glob(f"{self.log_prefix}[0-9]*.log"))
        )


def accepted_per_address(fake: Any) -> Counter[str]:
    return Counter(r.json()["To"] for r in fake.requests if r.path == "/email")


def statuses(campaign: Campaign) -> Counter[str]:
    return Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))


REDIS_SERVER = "/usr/bin/redis-server"  # `make system-deps` installs Debian's redis-server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer(ChildProcess):
    """A redis-server of the test's own on a free loopback port, its files under `directory`,
    so it can be killed and started again on the same port. With `appendonly` every write is
    logged to the append-only file (fsync'd every second, Redis's default) and a restart
    reloads the queues; without it, and with snapshots off, a restart comes back empty."""

    def __init__(self, directory: Path, *, appendonly: bool):
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 60) -> RedisServer:
        assert os.path.exists(REDIS_SERVER), "`make system-deps` installs redis-server"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = (self.directory / f"redis-{self.starts}.log").open("w")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "everysec",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start: see {log.name}")
            time.sleep(0.1)
        return self

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=2).ping())
        except redis.RedisError:  # refused, or still loading its append-only file
            return False

    def queue_length(self, queue: str) -> int:
        import redis

        return int(redis.Redis(port=self.port, socket_timeout=5).llen(queue))


class Beat(ChildProcess):
    """`celery beat` with django-celery-beat's DatabaseScheduler (as `make run` starts it),
    against the test database; SIGKILL takes it down without saving its schedule state."""

    def __init__(self, tmp_path: Path, *, name: str = "beat", **env: str):
        self.tmp_path = tmp_path
        self.name = name
        # PYTHONUNBUFFERED: the test reads the log while beat runs.
        self.env = child_process_env(
            var_dir=tmp_path / f"{name}-var", **{"PYTHONUNBUFFERED": "1", **env}
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Beat:
        self.starts += 1
        log = (self.tmp_path / f"{self.name}-{self.starts}.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
                f"--pidfile={self.tmp_path / f'{self.name}-{self.starts}.pid'}",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def logs(self) -> str:
        return "".join(
            path.read_text(errors="replace")
            for path in sorted(self.tmp_path.glob(f"{self.name}-[0-9]*.log"))
        )

    def sent(self, task: str) -> int:
        """How many times this beat (all its starts) has sent `task` so far."""
        return self.logs().count(f"Sending due task {task}")


def send_task_to(broker_url: str, task: Any, *args: Any) -> None:
    """Publish one task on the given broker (not the one this test process is set up for):
    the connection is passed in, the app's configuration is left as it is."""
    from config.celery import app as celery_app

    with celery_app.connection_for_write(broker_url) as conn:
        task.apply_async(args=list(args), connection=conn)
