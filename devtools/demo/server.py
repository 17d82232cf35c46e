"""The live system the scripted run talks to: the real application on a real HTTP server,
a real Celery worker, and a wait until that worker has nothing left that is due."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.management.base import OutputWrapper
from django.core.wsgi import get_wsgi_application
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Delivery
from devtools.processes import celery_worker
from segments.models import SegmentPendingContact
from triggers.models import TriggerFiring, TriggerPendingContact


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def http_server() -> Iterator[str]:
    """The real Django application on a real HTTP server on 127.0.0.1, for the API calls."""
    server = make_server(
        "127.0.0.1",
        0,
        get_wsgi_application(),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def post_json(url: str, key: str, payload: Any) -> tuple[int, Any]:
    """POST `payload` with an API key; the status and the decoded answer, errors included."""
    request = urllib.request.Request(  # noqa: S310 (our own server on 127.0.0.1)
        url,
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (our own server)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def post(url: str, data: bytes, headers: dict[str, str]) -> int:
    """POST raw bytes as a provider or a mail client would; only the status matters."""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@contextmanager
def demo_worker(*, stdout: OutputWrapper) -> Iterator[None]:
    """A real Celery worker on this demo's database and broker, as `make run` starts."""
    log_path = settings.VAR_DIR / "worker.log"
    with celery_worker(log=log_path, queues="default,dispatch,evaluation,webhooks") as process:
        stdout.write(f"worker:   a real Celery worker (pid {process.pid}), log in {log_path}\n")
        yield


def _busy() -> dict[str, int]:
    """Work still waiting for the worker: evaluations, segment refreshes, firings, sends."""
    now = timezone.now()
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    return {
        "evaluations": TriggerPendingContact.objects.count(),
        "segment refreshes": SegmentPendingContact.objects.count(),
        "firings": TriggerFiring.objects.filter(status=TriggerFiring.Status.PENDING).count(),
        "sends": Delivery.objects.filter(
            due, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
        ).count(),
    }


def wait_idle(*, stdout: OutputWrapper, timeout: float = 180) -> None:
    """Until the worker has nothing left that is due (deferred sends wait for their time)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        busy = _busy()
        quiet = quiet + 1 if not any(busy.values()) else 0
        if quiet >= 3:
            return
        time.sleep(1)
    stdout.write(f"  (still busy after {timeout:.0f}s: {_busy()}; see the worker log)\n")
