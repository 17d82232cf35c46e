"""The real processes the benchmarks, the demo and the worker tests drive: the web server
(runserver, no autoreload, threaded) and Celery workers, started against this process's
database and broker; and RSS readings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
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


def child_env(*, var_dir: Path | str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a process started against this one's database and broker: its
    VAR_DIR (this process's unless given) and `extra` on top."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(var_dir or settings.VAR_DIR),
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


def celery_worker_command(*, queues: str, hostname: str, options: Sequence[str] = ()) -> list[str]:
    """The command line of a worker of this project consuming `queues`; `options` add to
    it (a pool, a concurrency)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel=INFO",
        f"--queues={queues}",
        *options,
        "--without-gossip",
        "--without-mingle",
        f"--hostname={hostname}",
    ]


def queues_purge(queues: str, *, broker: str | None = None) -> None:
    """Empty `queues` on `broker` (settings.CELERY_BROKER_URL unless given), so a new worker
    starts on nothing an earlier run left behind."""
    from config.celery import app as celery_app

    with celery_app.connection_for_write(broker or str(settings.CELERY_BROKER_URL)) as conn:
        channel = conn.default_channel
        for queue in queues.split(","):
            # kombu's typed StdChannel lacks queue_purge; every transport's Channel has it.
            channel.queue_purge(queue)  # type: ignore[attr-defined]


@contextmanager
def celery_worker(
    *,
    log: Path,
    queues: str,
    concurrency: int = 2,
    hostname: str = "",
    var_dir: Path | str | None = None,
    **env: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on this process's database and broker (emptied first); yields once it
    reports ready. `env` goes on top of its environment (another broker, the outboxes)."""
    queues_purge(queues, broker=env.get("CELERY_BROKER_URL"))
    handle = log.open("w")
    process = subprocess.Popen(  # noqa: S603
        celery_worker_command(
            queues=queues,
            hostname=hostname or f"bench-{os.getpid()}-{queues.replace(',', '-')}@%h",
            options=(f"--concurrency={concurrency}", "--without-heartbeat"),
        ),
        cwd=ROOT,
        env=child_env(var_dir=var_dir, LOG_LEVEL="INFO", **env),
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
