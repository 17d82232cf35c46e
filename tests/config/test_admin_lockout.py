"""Admin login locks out after repeated failures (django-axes): five wrong passwords for one
username from one address, and even the right password is refused there for the cool-off.
The lock is on the (username, address) pair, so a stranger guessing from elsewhere cannot
lock the real admin out, and the stranger's own other guesses are not held back by it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
LOCKED = "Too many failed logins"
STRANGER = "203.0.113.7"
ADMIN_HOME = "198.51.100.20"


@pytest.fixture(autouse=True)
def ada() -> Any:
    return get_user_model().objects.create_superuser("ada", "ada@example.com", "correct-horse-42")


def log_in(address: str, username: str, password: str, client: Client | None = None) -> Any:
    client = client or Client(REMOTE_ADDR=address)
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})


def fail(times: int, *, address: str = STRANGER, username: str = "ada") -> list[int]:
    return [log_in(address, username, "wrong-guess").status_code for _ in range(times)]


def test_four_wrong_passwords_still_let_the_right_one_in() -> None:
    assert fail(4) == [200, 200, 200, 200]

    response = log_in(STRANGER, "ada", "correct-horse-42")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_after_five_wrong_passwords_even_the_right_one_is_refused() -> None:
    assert fail(5) == [200, 200, 200, 200, 429]

    client = Client(REMOTE_ADDR=STRANGER)

    response = log_in(STRANGER, "ada", "correct-horse-42", client)

    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED in page
    assert "Try again in 15 minutes" in page
    # Not logged in: admin still sends this client to the login page.
    assert client.get("/admin/").status_code == 302


def test_the_same_admin_from_another_address_is_not_locked_out() -> None:
    fail(5, address=STRANGER)

    response = log_in(ADMIN_HOME, "ada", "correct-horse-42")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_another_username_from_the_locked_address_is_not_locked_out() -> None:
    get_user_model().objects.create_superuser("bob", "bob@example.com", "battery-staple-77")
    fail(5, address=STRANGER, username="ada")

    response = log_in(STRANGER, "bob", "battery-staple-77")

    assert response.status_code == 302


def test_a_forged_forwarded_for_header_gets_no_fresh_tries() -> None:
    fail(5)
    client = Client(REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_FOR="192.0.2.99")

    response = client.post(LOGIN, {"username": "ada", "password": "correct-horse-42"})

    assert response.status_code == 429


def test_the_lockout_ends_after_the_cool_off() -> None:
    from axes.models import AccessAttempt

    fail(5)
    past = timezone.now() - dt.timedelta(minutes=16)
    AccessAttempt.objects.update(attempt_time=past)

    response = log_in(STRANGER, "ada", "correct-horse-42")

    assert response.status_code == 302


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_person_locked_out_in_the_browser_reads_why(live_server: Any, page: Any) -> None:
    get_user_model().objects.create_superuser("zoe", "zoe@example.com", "correct-horse-42")
    for _ in range(5):
        page.goto(f"{live_server.url}{LOGIN}")
        page.fill("#id_username", "zoe")
        page.fill("#id_password", "wrong-guess")
        page.click("input[type=submit]")
    page.goto(f"{live_server.url}{LOGIN}")
    page.fill("#id_username", "zoe")
    page.fill("#id_password", "correct-horse-42")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("input[type=submit]")

    screens = Path(settings.BASE_DIR) / "var" / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screens / "admin-lockout.png"), full_page=True)
    assert answer.value.status == 429
    text = page.inner_text("body")
    assert LOCKED in text
    assert "Try again in 15 minutes" in text
    assert page.url.startswith(f"{live_server.url}{LOGIN}")
