"""CSV import of contacts and events: messy files, the per-row report, reruns, consent proof,
suppression, and the admin upload."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from crm.models import ConsentRecord, Contact, Event, ImportRun, Suppression
from crm.normalise import address_hash
from crm.services.importing import import_contacts_file, import_events_file
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

HEADER = "email,first_name,last_name,timezone,phone\n"


@pytest.fixture(autouse=True)
def var_dir(settings: Any, tmp_path: Path) -> Path:
    """Reports and uploads go under this test's own folder."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return settings.VAR_DIR


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def write(content: str | bytes, name: str = "contacts.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write


def report_rows(run: ImportRun) -> list[dict[str, str]]:
    with open(run.report_path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def problems(run: ImportRun) -> set[tuple[str, str, str]]:
    """(row, column, outcome) of every report line about a row."""
    return {(r["row"], r["column"], r["outcome"]) for r in report_rows(run) if r["row"] != "1"}


def run_command(name: str, path: Path) -> str:
    out = io.StringIO()
    call_command("crm", name, str(path), stdout=out)
    return out.getvalue()


# --- Contacts: messy files -------------------------------------------------------------------


def test_a_messy_file_lands_its_good_rows_and_reports_bad_ones_by_row_and_column(
    write: Callable[..., Path],
) -> None:
    path = write(
        "\ufeff Email ,First Name,LAST_NAME,TimeZone,Phone\n"
        '  Ada@Example.COM , Ada ,"Lovelace, Countess of",Europe/London,\n'
        "\n"
        'grace@example.com,Grace,"Hopper\nRear Admiral",America/New_York,\n'
        "not-an-email,Bad,Email,,\n"
        "tz@example.com,Bad,Zone,Mars/Olympus,\n"
        "phone@example.com,Bad,Phone,,12\n"
        "   ,  ,  ,  ,\n"
        "linus@example.com,Linus,Torvalds,Europe/Helsinki,+358 40 1234567\n"
    )

    run = import_contacts_file(path=path)

    assert run.status == ImportRun.Status.DONE
    ada = Contact.objects.get(email_key="ada@example.com")
    assert (ada.first_name, ada.last_name, ada.timezone) == (
        "Ada",
        "Lovelace, Countess of",
        "Europe/London",
    )
    assert Contact.objects.get(email_key="grace@example.com").last_name == "Hopper Rear Admiral"
    assert Contact.objects.get(email_key="linus@example.com").phone == "+358401234567"
    assert problems(run) == {
        ("5", "Email", "rejected"),
        ("6", "TimeZone", "rejected"),
        ("7", "Phone", "rejected"),
    }
    assert (run.rows_read, run.rows_created, run.rows_rejected) == (6, 3, 3)


def test_the_report_says_why_a_row_was_rejected_and_echoes_the_value(
    write: Callable[..., Path],
) -> None:
    run = import_contacts_file(path=write(HEADER + "tz@example.com,Bad,Zone,Mars/Olympus,\n"))

    [line] = [r for r in report_rows(run) if r["outcome"] == "rejected"]
    assert line["row"] == "2"
    assert line["value"] == "Mars/Olympus"
    assert "not an IANA time zone" in line["reason"]


def test_unicode_names_are_kept_exactly(write: Callable[..., Path]) -> None:
    path = write(
        HEADER
        + "zoe@example.com,Zoë,Saldaña,Europe/Berlin,\n"
        + "jose@example.com,José,Núñez,America/New_York,\n"
        + "wang@example.com,王小明,王,Asia/Shanghai,\n"
    )

    import_contacts_file(path=path)

    names = set(Contact.objects.values_list("first_name", "last_name"))
    assert names == {("Zoë", "Saldaña"), ("José", "Núñez"), ("王小明", "王")}


def test_a_windows_1252_file_keeps_its_names_and_warns_in_the_report(
    write: Callable[..., Path],
) -> None:
    path = write(
        (HEADER + "jose@example.com,José,García,,\nzoe@example.com,Zoë,Ng,,\n").encode("cp1252")
    )

    run = import_contacts_file(path=path)

    assert run.status == ImportRun.Status.DONE
    assert set(Contact.objects.values_list("first_name", "last_name")) == {
        ("José", "García"),
        ("Zoë", "Ng"),
    }
    warnings = [r for r in report_rows(run) if r["outcome"] == "warning"]
    assert {(r["row"], r["column"], r["value"]) for r in warnings} == {
        ("2", "first_name", "José"),
        ("2", "last_name", "García"),
        ("3", "first_name", "Zoë"),
    }
    assert "Windows-1252" in warnings[0]["reason"] and "offset" in warnings[0]["reason"]


def test_a_file_mixing_utf8_and_windows_1252_lines_keeps_both_right(
    write: Callable[..., Path],
) -> None:
    path = write(
        HEADER.encode()
        + "wang@example.com,王小明,王,,\n".encode()
        + "jose@example.com,José,García,,\n".encode("cp1252")
    )

    import_contacts_file(path=path)

    assert set(Contact.objects.values_list("first_name", flat=True)) == {"王小明", "José"}


def test_bytes_that_are_neither_utf8_nor_windows_1252_reject_only_their_row(
    write: Callable[..., Path],
) -> None:
    path = write(HEADER.encode() + b"bad@example.com,X\x81Y,Z,,\nok@example.com,Ok,Fine,,\n")

    run = import_contacts_file(path=path)

    assert list(Contact.objects.values_list("email", flat=True)) == ["ok@example.com"]
    [line] = [r for r in report_rows(run) if r["outcome"] == "rejected"]
    assert line["row"] == "2"
    assert "neither UTF-8 nor Windows-1252" in line["reason"]
    assert "byte offset" in line["reason"]


def test_a_missing_required_header_imports_nothing_and_names_it(
    write: Callable[..., Path],
) -> None:
    path = write("first_name,last_name\nAda,Lovelace\n")

    with pytest.raises(CommandError, match="one of email, phone, external_id"):
        run_command("import-contacts", path)

    assert Contact.objects.count() == 0
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED
    assert "Missing required column" in run.error


def test_rows_with_too_many_or_too_few_columns_are_rejected_and_the_rest_land(
    write: Callable[..., Path],
) -> None:
    path = write(
        HEADER
        + "short@example.com,Short\n"
        + "long@example.com,Long,Row,,,surprise\n"
        + "trailing@example.com,Trailing,Comma,,,\n"
        + "ok@example.com,Ok,Row,,\n"
    )

    run = import_contacts_file(path=path)

    assert set(Contact.objects.values_list("email", flat=True)) == {
        "trailing@example.com",
        "ok@example.com",
    }
    assert problems(run) == {("2", "", "rejected"), ("3", "", "rejected")}


def test_rows_naming_one_person_in_another_case_become_one_contact(
    write: Callable[..., Path],
) -> None:
    path = write(
        HEADER
        + "ada@example.com,Ada,Lovelace,,\n"
        + "ADA@Example.com ,Ada,Lovelace,,\n"
        + "ada@example.com,,,Europe/London,\n"
    )

    run = import_contacts_file(path=path)

    ada = Contact.objects.get()
    assert (ada.email, ada.first_name, ada.timezone) == ("ada@example.com", "Ada", "Europe/London")
    lines = {r["row"]: r for r in report_rows(run)}
    assert lines["3"]["outcome"] == "duplicate" and "row 2" in lines["3"]["reason"]
    assert lines["4"]["outcome"] == "imported" and "merged" in lines["4"]["reason"]


def test_a_row_giving_one_person_two_emails_through_its_phone_is_rejected(
    write: Callable[..., Path],
) -> None:
    path = write(
        HEADER + "a@example.com,A,,,+1 415 555 0100\n" + "b@example.com,B,,,+1 415 555 0100\n"
    )

    run = import_contacts_file(path=path)

    assert list(Contact.objects.values_list("email", flat=True)) == ["a@example.com"]
    assert problems(run) == {("3", "email", "rejected")}


def test_a_second_run_of_the_same_file_changes_nothing(write: Callable[..., Path]) -> None:
    path = write(
        "email,first_name,timezone,consent_email,plan\n"
        "ada@example.com,Ada,Europe/London,yes,pro\n"
        "ADA@example.com,Ada,,,\n"
        "grace@example.com,Grace,,no,\n"
        "bad,Bad,,,\n"
    )
    import_contacts_file(path=path)
    before = list(Contact.objects.order_by("pk").values())
    consents = ConsentRecord.objects.count()

    run = import_contacts_file(path=path)

    assert (run.rows_created, run.rows_updated, run.rows_unchanged, run.rows_rejected) == (
        0,
        0,
        3,
        1,
    )
    assert list(Contact.objects.order_by("pk").values()) == before
    assert ConsentRecord.objects.count() == consents


def test_a_blank_cell_leaves_the_existing_value_alone(write: Callable[..., Path]) -> None:
    ContactFactory(email="ada@example.com", first_name="Ada", timezone="Europe/London")

    run = import_contacts_file(path=write(HEADER + "ada@example.com,,Lovelace,,\n"))

    ada = Contact.objects.get()
    assert (ada.first_name, ada.last_name, ada.timezone) == ("Ada", "Lovelace", "Europe/London")
    assert run.rows_updated == 1


def test_unknown_columns_become_custom_attributes(write: Callable[..., Path]) -> None:
    path = write("email,Loyalty Points,attr_email,emial\nada@example.com,120,work,oops\n")

    run = import_contacts_file(path=path)

    assert Contact.objects.get().attributes == {
        "loyalty_points": "120",
        "email": "work",
        "emial": "oops",
    }
    header_notes = {r["column"]: r["reason"] for r in report_rows(run) if r["row"] == "1"}
    assert "custom attribute 'loyalty_points'" in header_notes["Loyalty Points"]
    assert "did you mean 'email'?" in header_notes["emial"]


def test_report_cells_that_a_spreadsheet_would_run_as_formulas_are_defused(
    write: Callable[..., Path],
) -> None:
    run = import_contacts_file(path=write(HEADER + '"=HYPERLINK(""http://x"")",X,,,\n'))

    [line] = [r for r in report_rows(run) if r["outcome"] == "rejected"]
    assert line["value"] == '\'=HYPERLINK("http://x")'


# --- Contacts: consent and suppression -------------------------------------------------------


def test_consent_columns_are_recorded_with_the_file_and_row_as_proof(
    write: Callable[..., Path],
) -> None:
    path = write(
        "email,phone,consent_email,consent_sms,consent_text,consent_purpose\n"
        "ada@example.com,+1 415 555 0100,Yes,0,Send me offers,newsletter\n"
        "grace@example.com,,granted,,,\n"
    )

    run = import_contacts_file(path=path)

    proof = {"file": "contacts.csv", "row": 2, "import_run": run.pk}
    ada = ConsentRecord.objects.filter(contact__email="ada@example.com").order_by("channel")
    assert list(ada.values_list("channel", "purpose", "status", "source", "text", "proof")) == [
        ("email", "newsletter", "granted", "import", "Send me offers", proof),
        ("sms", "newsletter", "withdrawn", "import", "Send me offers", proof),
    ]
    grace = ConsentRecord.objects.get(contact__email="grace@example.com")
    assert (grace.purpose, grace.proof["row"]) == ("marketing", 3)


def test_an_unknown_consent_answer_rejects_the_row_naming_the_column(
    write: Callable[..., Path],
) -> None:
    run = import_contacts_file(path=write("email,Consent_Email\nada@example.com,maybe\n"))

    assert Contact.objects.count() == 0
    assert problems(run) == {("2", "Consent_Email", "rejected")}


def test_a_suppressed_address_is_imported_without_consent_and_the_report_says_so(
    write: Callable[..., Path],
) -> None:
    Suppression.objects.create(
        channel="email",
        address_hash=address_hash("email", "erased@example.com"),
        reason=Suppression.Reason.ERASED,
    )
    path = write(
        "email,first_name,consent_email,consent_sms,phone\n"
        "Erased@example.com,Eve,yes,yes,+1 415 555 0100\n"
        "kept@example.com,Kim,yes,,\n"
    )

    run = import_contacts_file(path=path)

    eve = Contact.objects.get(email_key="erased@example.com")
    assert not ConsentRecord.objects.filter(contact=eve).exists()
    assert ConsentRecord.objects.filter(contact__email="kept@example.com").count() == 1
    lines = [r for r in report_rows(run) if r["row"] == "2"]
    assert {r["column"] for r in lines} == {"consent_email", "consent_sms"}
    assert all(r["reason"].startswith("suppressed: consent not recorded") for r in lines)


# --- Contacts: scale and progress -----------------------------------------------------------


def test_a_file_of_several_batches_prints_progress_and_keeps_the_run_counts(
    write: Callable[..., Path],
) -> None:
    rows = "".join(f"person{n}@example.com,P{n},Q,,\n" for n in range(1100))

    output = run_command("import-contacts", write(HEADER + rows + "bad,,,,\n"))

    run = ImportRun.objects.get()
    assert (run.rows_read, run.rows_created, run.rows_rejected) == (1101, 1100, 1)
    assert Contact.objects.count() == 1100
    assert "1,101 rows read" in output and "created 1,100" in output
    assert f"Report: {run.report_path}" in output


# --- Events ----------------------------------------------------------------------------------

EVENTS = (
    "type,occurred_at,Email,external_id,id,value,currency,prop_product_id,properties.name,colour\n"
    "order_completed,2026-11-20T10:00:00Z,ada@example.com,,o-1,42.50,eur,SKU-1,Mug,blue\n"
    "order_completed,2026-11-20T10:00:00Z,ada@example.com,,o-1,42.50,eur,SKU-1,Mug,blue\n"
    "product_viewed,2026-11-20T09:00:00+01:00,new@example.com,,,,,SKU-2,Plate,\n"
    "product_viewed,2026-11-20T09:00:00+01:00,NEW@example.com,,,,,SKU-2,Plate,\n"
    "page_viewed,2026-11-20 09:00,ada@example.com,,,,,,,\n"
    "page_viewed,2026-11-19T09:00:00Z,,,,,,,,\n"
    "page_viewed,2026-11-19T08:00:00Z,,CUST-9,,,,,,\n"
)


def test_events_import_creates_contacts_and_reports_duplicates_and_bad_rows(
    write: Callable[..., Path],
) -> None:
    ContactFactory(email="ada@example.com")

    run = import_events_file(path=write(EVENTS, "events.csv"))

    assert (run.rows_read, run.rows_created, run.rows_unchanged, run.rows_rejected) == (7, 3, 2, 2)
    order = Event.objects.get(type="order_completed")
    assert (order.contact.email, str(order.value), order.currency, order.client_id) == (
        "ada@example.com",
        "42.50",
        "EUR",
        "o-1",
    )
    assert order.properties == {"product_id": "SKU-1", "name": "Mug", "colour": "blue"}
    assert Contact.objects.filter(email_key="new@example.com").exists()
    assert Contact.objects.filter(external_id="CUST-9").exists()
    assert problems(run) == {
        ("3", "id", "duplicate"),
        ("5", "", "duplicate"),
        ("6", "occurred_at", "rejected"),
        ("7", "Email", "rejected"),
    }


def test_a_second_run_of_an_events_file_records_nothing_new(write: Callable[..., Path]) -> None:
    path = write(EVENTS, "events.csv")
    import_events_file(path=path)
    events = Event.objects.count()

    output = run_command("import-events", path)

    assert Event.objects.count() == events
    run = ImportRun.objects.latest("pk")
    assert (run.rows_created, run.rows_unchanged) == (0, 5)
    assert "accepted 0 · duplicate 5 · rejected 2" in output


def test_an_events_file_without_type_or_occurred_at_imports_nothing(
    write: Callable[..., Path],
) -> None:
    path = write("email,when\nada@example.com,2026-11-20T10:00:00Z\n", "events.csv")

    with pytest.raises(CommandError, match="type; occurred_at"):
        run_command("import-events", path)

    assert Event.objects.count() == 0 and Contact.objects.count() == 0


# --- Admin upload ----------------------------------------------------------------------------


@pytest.fixture
def eager(settings: Any) -> None:
    # Celery reads Django's settings live, and the settings fixture undoes this afterwards.
    # (Setting app.conf directly would outlive the test and make every later task eager.)
    settings.CELERY_TASK_ALWAYS_EAGER = True


def upload(client: Client, content: bytes, name: str, kind: str = "contacts") -> Any:
    return client.post(
        reverse("admin:crm_importrun_add"),
        {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def test_an_admin_upload_runs_the_import_and_the_report_downloads(
    admin_client: Client,
    eager: None,
    var_dir: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    content = (HEADER + "zoe@example.com,Zoë,Ng,Europe/Berlin,\nbad,X,,,\n").encode()

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, content, "spring list.csv")

    run = ImportRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:crm_importrun_change", args=[run.pk])
    assert (var_dir / "imports" / f"{run.pk}-spring_list.csv").read_bytes() == content
    assert Contact.objects.get().first_name == "Zoë"
    page = admin_client.get(response["Location"]).content.decode()
    assert "1 created" in page and "1 rejected" in page and "Done" in page
    assert 'http-equiv="refresh"' not in page
    report = admin_client.get(reverse("admin:crm_importrun_report", args=[run.pk]))
    assert report.status_code == 200
    assert "attachment" in report["Content-Disposition"]
    body = report.getvalue().decode("utf-8-sig")
    assert "3,email,bad," in body


def test_a_running_import_page_refreshes_itself(admin_client: Client) -> None:
    run = ImportRun.objects.create(kind="contacts", filename="big.csv", status="running")

    page = admin_client.get(reverse("admin:crm_importrun_change", args=[run.pk]))

    assert 'http-equiv="refresh"' in page.content.decode()


def test_a_marketer_with_import_permissions_can_upload(
    client: Client, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    user = get_user_model().objects.create_user("marketer", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="crm", codename__in=["add_importrun", "view_importrun"]
        )
    )
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, (HEADER + "ada@example.com,Ada,,,\n").encode(), "a.csv")

    assert response.status_code == 302
    assert Contact.objects.filter(email="ada@example.com").exists()
    assert client.get(reverse("admin:crm_importrun_changelist")).status_code == 200


def test_staff_without_the_add_permission_cannot_upload(client: Client) -> None:
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)

    response = upload(client, (HEADER + "ada@example.com,Ada,,,\n").encode(), "a.csv")

    assert response.status_code == 403
    assert ImportRun.objects.count() == 0


def test_an_uploaded_file_name_is_shown_escaped(
    admin_client: Client, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, (HEADER + "ada@example.com,Ada,,,\n").encode(), "<img src=x>.csv")

    page = admin_client.get(reverse("admin:crm_importrun_changelist")).content.decode()
    assert "<img src=x>" not in page
    assert "&lt;img src=x&gt;.csv" in page


def test_a_value_under_a_column_without_header_is_reported_not_dropped_silently(
    write: Callable[..., Path],
) -> None:
    run = import_contacts_file(path=write("email,,first_name\nada@example.com,stray,Ada\n"))

    assert Contact.objects.get().first_name == "Ada"
    [line] = [r for r in report_rows(run) if r["row"] == "2"]
    assert (line["column"], line["value"], line["outcome"]) == ("column 2", "stray", "warning")


@pytest.mark.django_db(transaction=True)
def test_a_receiver_failing_after_commit_does_not_make_saved_events_look_unsaved(
    write: Callable[..., Path],
) -> None:
    from crm.signals import events_ingested

    def broken_receiver(**kwargs: Any) -> None:
        raise RuntimeError("listener down")

    events_ingested.connect(broken_receiver, weak=False, dispatch_uid="test-broken")
    try:
        run = import_events_file(path=write(EVENTS, "events.csv"))
    finally:
        events_ingested.disconnect(dispatch_uid="test-broken")

    assert (run.rows_created, run.rows_unchanged, run.rows_rejected) == (3, 2, 2)
    assert Event.objects.count() == 3


def test_the_import_page_lists_runs_with_progress_and_offers_the_upload_form(
    admin_client: Client,
) -> None:
    ImportRun.objects.create(
        kind="events", filename="orders.csv", status="done", rows_read=10, rows_created=7
    )

    listing = admin_client.get(reverse("admin:crm_importrun_changelist")).content.decode()
    form = admin_client.get(reverse("admin:crm_importrun_add")).content.decode()

    assert "Import contacts / events" in listing and "Upload a CSV file" in listing
    assert "orders.csv" in listing and "10 read · 7 accepted" in listing
    assert 'type="file"' in form and 'name="kind"' in form
