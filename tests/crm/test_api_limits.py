"""The API's per-key rate limits (429 with Retry-After) and its JSON answers for paths that
name nothing, through Django's whole stack in process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from crm.api.auth import api_key_create
from crm.models import Event

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

EVENT = {
    "type": "product_viewed",
    "occurred_at": "2026-01-10T12:00:00Z",
    "contact": {"email": "ada@example.com"},
}


def key_named(name: str) -> str:
    return api_key_create(name=name)[1]


def get(path: str, key: str) -> Any:
    return Client().get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {key}")


def post_event(key: str) -> Any:
    return Client().post(
        "/api/v1/events",
        data=json.dumps({"events": [EVENT]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


# --- JSON 404 --------------------------------------------------------------------------------


def test_a_contact_id_that_is_not_a_uuid_is_a_json_404() -> None:
    response = get("contacts/not-a-uuid", key_named("shop"))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "no contact has this id"}


def test_a_contact_id_that_is_not_a_uuid_still_needs_a_key() -> None:
    response = Client().get("/api/v1/contacts/not-a-uuid")
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]


def test_a_path_the_api_does_not_have_is_a_json_404() -> None:
    response = Client().post("/api/v1/contact", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "no such endpoint" in response.json()["error"]


# --- Rate limits -----------------------------------------------------------------------------


def test_over_the_burst_a_key_gets_429_with_retry_after(settings: Any) -> None:
    settings.API_RATE_BURST, settings.API_RATE_SUSTAINED = "3/m", ""
    key = key_named("shop")

    answers = [get("contacts?email=ada@example.com", key) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited["Content-Type"] == "application/json"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["retry_after"] == int(limited["Retry-After"])
    assert "too many requests with this API key" in limited.json()["error"]


def test_over_the_sustained_rate_a_key_gets_429_with_retry_after(settings: Any) -> None:
    settings.API_RATE_BURST, settings.API_RATE_SUSTAINED = "", "2/h"
    key = key_named("shop")

    answers = [get("contacts?email=ada@example.com", key) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 3600


def test_a_limited_request_records_nothing(settings: Any) -> None:
    settings.API_RATE_BURST, settings.API_RATE_SUSTAINED = "1/m", ""
    key = key_named("shop")

    assert post_event(key).status_code == 200
    assert post_event(key).status_code == 429
    assert Event.objects.count() == 1


def test_each_key_has_its_own_allowance(settings: Any) -> None:
    settings.API_RATE_BURST, settings.API_RATE_SUSTAINED = "1/m", ""
    shop, crm = key_named("shop"), key_named("crm-sync")

    assert get("contacts?email=ada@example.com", shop).status_code == 200
    assert get("contacts?email=ada@example.com", shop).status_code == 429
    assert get("contacts?email=ada@example.com", crm).status_code == 200


def test_the_allowance_is_shared_by_every_endpoint(settings: Any) -> None:
    settings.API_RATE_BURST, settings.API_RATE_SUSTAINED = "2/m", ""
    key = key_named("shop")

    assert get("contacts?email=ada@example.com", key).status_code == 200
    assert post_event(key).status_code == 200
    assert get("contacts/not-a-uuid", key).status_code == 429


def test_an_empty_rate_turns_the_limit_off(settings: Any) -> None:
    settings.API_RATE_BURST, settings.API_RATE_SUSTAINED = "", ""
    key = key_named("shop")
    statuses = {get("contacts?email=ada@example.com", key).status_code for _ in range(30)}
    assert statuses == {200}


def test_a_malformed_rate_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "API_RATE_BURST": "sixty a second", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "API_RATE_BURST='sixty a second'" in result.stderr
    assert "e.g. 600/m, 60/s" in result.stderr
