"""A person logs into admin in a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_logs_in_with_a_real_browser(live_server: Any, page: Any, tmp_path: Path) -> None:
    get_user_model().objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    page.screenshot(path=str(tmp_path / "admin.png"))
    assert page.url == f"{live_server.url}/admin/"
    assert "Site administration" in page.inner_text("body")
    assert "contacts and consent" in page.inner_text("body").lower()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_wrong_password_is_refused(live_server: Any, page: Any) -> None:
    get_user_model().objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "wrong")
    page.click("input[type=submit]")
    assert "Please enter the correct username and password" in page.inner_text("body")
    assert page.url.startswith(f"{live_server.url}/admin/login/")
