"""Fixtures shared by the whole suite: outboxes in a temporary folder, a real browser."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM beside it is safe here
# because tests are single-threaded.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Rate-limit counters and lockouts live in Django's cache, which is Redis in CI and
    outlives a test's transaction there: every test starts with none."""
    from django.core.cache import cache

    # The database cache is out of reach of a test without database access (and rolled back
    # with the test's transaction anyway).
    with contextlib.suppress(Exception):
        cache.clear()
    yield


@pytest.fixture
def marketer_client() -> Any:
    """A test client logged in as "mara", staff in the Marketers group (not a superuser)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user = User.objects.create_user("mara", "mara@example.com", "x", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def outbox(settings: Any, tmp_path: Path) -> Path:
    """Email .eml files and the SMS JSON-lines file go under this folder for one test."""
    settings.EMAIL_BACKEND = "campaigns.channels.email_file.EmlFileBackend"
    settings.EMAIL_OUTBOX_DIR = tmp_path / "outbox" / "email"
    settings.SMS_BACKEND = "file"
    settings.SMS_OUTBOX_FILE = tmp_path / "outbox" / "sms.jsonl"
    return tmp_path / "outbox"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (it cannot download a browser of its own)."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "make test installs Debian's chromium; it is missing"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def fake_provider() -> Iterator[Any]:
    """A fake Postmark/Twilio HTTP server on 127.0.0.1 (devtools/fake_provider.py)."""
    from devtools.fake_provider import FakeProvider

    provider = FakeProvider().start()
    yield provider
    provider.stop()
