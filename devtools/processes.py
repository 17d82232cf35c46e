"""The real processes the benchmarks, the demo and the worker tests drive: the web server
(runserver, no autoreload, threaded) and Celery workers, started against the benchmark's
database and broker; and RSS readings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def database_url() -> str:
    """This process's database, as a URL for a child process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{auth}{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(settings.VAR_DIR),
        "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: object, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def web_server(*, log: Path) -> Iterator[str]:
    """The Django app under runserver on 127.0.0.1 with DEBUG off (no query log kept in
    memory). Yields its base URL."""
    port = free_port()
    env = child_env(
        DEBUG="false",
        SECRET_KEY=str(settings.SECRET_KEY),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        # The ingest benchmark measures throughput through one API key: no per-key limit.
        API_RATE_SUSTAINED="",
        API_RATE_BURST="",
    )
    handle = log.open("w")
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the web server exited; see {log}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, timeout=60, what="the web server")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
        handle.close()


@contextmanager
def celery_worker(
    *, log: Path, queues: str, concurrency: int = 2, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on the benchmark's broker; yields once it reports ready."""
    from config.celery import app as celery_app

    with celery_app.connection_for_write(str(settings.CELERY_BROKER_URL)) as conn:
        for queue in queues.split(","):
            conn.default_channel.queue_purge(queue)
    handle = log.open("w")
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            f"--queues={queues}",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=bench-{os.getpid()}-{queues.replace(',', '-')}@%h",
        ],
        cwd=ROOT,
        env=child_env(LOG_LEVEL="INFO", **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited; see {log}")
        return " ready." in log.read_text(errors="replace")

    try:
        wait_until(ready, timeout=90, what="the Celery worker")
        yield process
    finally:
        _stop(process)
        handle.close()


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MB, from /proc (Linux)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc status")
