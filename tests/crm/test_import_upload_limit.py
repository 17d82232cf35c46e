"""The admin CSV upload has a size limit (IMPORT_MAX_UPLOAD_MB): a bigger file is refused
with a message on the form, before anything is stored or imported; a smaller one imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from crm.models import Contact, ImportRun

pytestmark = pytest.mark.django_db

HEADER = b"email,first_name\n"
MESSAGE = "This file is 1.2 MB; files up to 1 MB can be imported (IMPORT_MAX_UPLOAD_MB)."


@pytest.fixture
def one_mb_limit(settings: Any, tmp_path: Path) -> None:
    settings.IMPORT_MAX_UPLOAD_MB = 1
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.CELERY_TASK_ALWAYS_EAGER = True


def csv_of(size: int) -> bytes:
    row = b"someone@example.com,Someone\n"
    return HEADER + row * ((size - len(HEADER)) // len(row) + 1)


def upload(client: Client, content: bytes) -> Any:
    return client.post(
        reverse("admin:crm_importrun_add"),
        {
            "kind": "contacts",
            "file": SimpleUploadedFile("list.csv", content, content_type="text/csv"),
        },
    )


def test_a_file_over_the_limit_is_refused_with_a_message_on_the_form(
    admin_client: Client, one_mb_limit: None, tmp_path: Path
) -> None:
    response = upload(admin_client, csv_of(1_200_000))

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [MESSAGE]
    assert MESSAGE in response.content.decode()
    assert ImportRun.objects.count() == 0
    assert not list((tmp_path / "var").rglob("*.csv"))


def test_a_file_just_over_the_limit_is_refused_as_it_is_read(
    admin_client: Client, one_mb_limit: None
) -> None:
    response = upload(admin_client, csv_of(1_030_000))

    assert response.context["form"].errors["file"] == [
        "This file is 1.03 MB; files up to 1 MB can be imported (IMPORT_MAX_UPLOAD_MB)."
    ]
    assert ImportRun.objects.count() == 0


def test_a_file_under_the_limit_imports(
    admin_client: Client, one_mb_limit: None, django_capture_on_commit_callbacks: Any
) -> None:
    content = HEADER + b"ada@example.com,Ada\n" + b"# filler\n" * 100_000  # 0.9 MB

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, content)

    assert response.status_code == 302
    assert Contact.objects.filter(email="ada@example.com").exists()


def test_the_upload_form_says_how_big_a_file_may_be(
    admin_client: Client, one_mb_limit: None
) -> None:
    content = admin_client.get(reverse("admin:crm_importrun_add")).content.decode()

    assert "Files up to 1 MB." in content


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_person_uploading_a_file_over_the_limit_reads_why(
    live_server: Any, page: Any, settings: Any, tmp_path: Path
) -> None:
    settings.IMPORT_MAX_UPLOAD_MB = 1
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    get_user_model().objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    big = tmp_path / "list.csv"
    big.write_bytes(csv_of(1_200_000))
    page.goto(f"{live_server.url}/admin/login/?next=/admin/crm/importrun/add/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("#id_file")

    page.set_input_files("#id_file", str(big))
    page.click("input[type=submit]")
    page.wait_for_selector(".errorlist")

    screens = Path(settings.BASE_DIR) / "var" / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screens / "import-too-large.png"), full_page=True)
    assert MESSAGE in page.inner_text(".errorlist")
    assert ImportRun.objects.count() == 0
