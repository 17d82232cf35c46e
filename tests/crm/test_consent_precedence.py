"""Consent precedence (GDPR Art. 7(3), CAN-SPAM, TCPA): a withdrawal the person made
themselves is reversed only by the person. Grants from sources the business controls (CSV
import, including the admin upload, and the API) are refused and reported, and a send after
them reaches nobody; the person's own double opt-in, preference centre or SMS START works."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone
from twilio.request_validator import RequestValidator

from campaigns.models import Campaign, Delivery
from campaigns.services.consent_actions import ConsentEvidence, contact_consent_withdraw
from campaigns.services.launch import campaign_launch
from campaigns.services.scheduling import quiet_hours_zones, sms_next_allowed
from campaigns.services.send import deliveries_send
from campaigns.tokens import one_click_unsubscribe_url, preferences_token, unsubscribe_url
from crm.models import ConsentRecord, Contact, ImportRun, Suppression
from crm.normalise import address_hash
from crm.selectors import consent_current
from crm.services.consent import consent_record
from crm.services.importing import import_contacts_file
from tests.campaigns.dispatch_helpers import campaign_for, tasks_run_inline
from tests.factories import ConsentFactory, ContactFactory
from tests.worker import tasks_eager

pytestmark = pytest.mark.django_db

EMAIL = "ada@example.com"
PHONE = "+14155550123"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
BASE = "https://shop.example"
CONFIRM_LINK = re.compile(r"https?://[^\s\"<>]+(/subscribe/confirm/[^/\s\"<>]+/)")

# How the person said stop, and on which channel.
WITHDRAWALS = {
    "unsubscribe_link": "email",
    "one_click": "email",
    "preference_center": "email",
    "provider_unsubscribe": "email",
    "sms_stop": "sms",
    "carrier_stop": "sms",
}


@pytest.fixture(autouse=True)
def environment(settings: Any, outbox: Path, tmp_path: Path) -> Path:
    """Real sends land in the test's outbox; Twilio requests are signed for this base URL."""
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.PUBLIC_BASE_URL = BASE
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return outbox


@pytest.fixture
def ada() -> Contact:
    contact = ContactFactory.create(email=EMAIL, phone=PHONE, first_name="Ada")
    for channel in ("email", "sms"):
        ConsentFactory.create(
            contact=contact,
            channel=channel,
            source=ConsentRecord.Source.IMPORT,
            occurred_at=timezone.now() - dt.timedelta(days=30),
        )
    return contact


def _path(url: str) -> str:
    return url.removeprefix(BASE)


def _twilio(path: str, data: dict[str, str]) -> Any:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{BASE}{path}", data)
    with tasks_eager(), TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


_sids: Iterator[int] = iter(range(1, 100_000))


def withdraw(contact: Contact, how: str) -> None:
    """The person says stop, through the real page, endpoint or webhook."""
    client = Client()
    if how == "unsubscribe_link":
        url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
        assert client.post(_path(url), {"scope": "all"}).status_code == 200
    elif how == "one_click":
        url = one_click_unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
        response = client.post(_path(url), {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    elif how == "preference_center":
        path = reverse("campaigns:preferences", args=[preferences_token(contact_id=contact.pk)])
        # Every box unticked: the person wants nothing on any channel.
        assert client.post(path, {"pause": ""}).status_code == 302
    elif how == "provider_unsubscribe":
        contact_consent_withdraw(
            contact=contact,
            channel="email",
            all_granted=True,
            evidence=ConsentEvidence(source=ConsentRecord.Source.PROVIDER_UNSUBSCRIBE),
        )
    elif how == "sms_stop":
        sid = f"SM{next(_sids):032d}"
        data = {"MessageSid": sid, "From": PHONE, "To": "+15005550006", "Body": "STOP"}
        assert _twilio("/webhooks/twilio/inbound/", data).status_code == 200
    elif how == "carrier_stop":
        sid = f"SM{next(_sids):032d}"
        data = {"MessageSid": sid, "MessageStatus": "failed", "To": PHONE, "ErrorCode": "21610"}
        assert _twilio("/webhooks/twilio/status/", data).status_code in (200, 204)
    else:
        raise AssertionError(how)
    channel = WITHDRAWALS[how]
    assert consent_current([contact.pk])[contact.pk][(channel, "marketing")] == "withdrawn"


def expected_skip(how: str) -> str:
    # The carrier's STOP also suppresses the number, which the send checks first.
    return Delivery.Reason.SUPPRESSED if how == "carrier_stop" else Delivery.Reason.NO_CONSENT


def ledger(contact: Contact) -> list[tuple[str, str, str, str]]:
    return list(
        ConsentRecord.objects.filter(contact=contact)
        .order_by("id")
        .values_list("channel", "purpose", "status", "source")
    )


def sent(outbox: Path, channel: str) -> list[str]:
    """Addresses that received a message on the channel."""
    if channel == "email":
        folder = outbox / "email"
        files = sorted(folder.glob("*.eml")) if folder.exists() else []
        return [
            line.split(":", 1)[1].strip()
            for path in files
            for line in path.read_text().splitlines()
            if line.startswith("To:")
        ]
    sms = outbox / "sms.jsonl"
    lines = sms.read_text().splitlines() if sms.exists() else []
    return [json.loads(line)["to"] for line in lines]


def send(contact: Contact, channel: str, capture: Any) -> Delivery:
    """A real broadcast to the contact through the dispatch pipeline, sent at the first
    moment SMS quiet hours allow in every zone of the contact (now, for email), so the
    answer is consent's whatever the hour the suite runs at."""
    campaign = campaign_for([contact], channel=channel, kind=Campaign.Kind.BROADCAST)
    with tasks_run_inline(), capture(execute=True):
        campaign_launch(campaign=campaign, enqueue=False)
    delivery = Delivery.objects.get(campaign=campaign, contact=contact)
    moment = timezone.now()
    if channel == "sms":
        zones = quiet_hours_zones(
            timezone_name=contact.timezone, country=contact.country, phone=contact.phone or ""
        )
        moment = sms_next_allowed(moment, zones)
    with tasks_run_inline(), capture(execute=True):
        deliveries_send(delivery_ids=[delivery.pk], now=moment)
    return Delivery.objects.get(pk=delivery.pk)


def import_file(tmp_path: Path, content: str) -> ImportRun:
    path = tmp_path / "crm-export.csv"
    path.write_text(content)
    return import_contacts_file(path=path)


def report_rows(run: ImportRun) -> list[dict[str, str]]:
    with open(run.report_path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def api_post(body: dict[str, Any]) -> Any:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("crm", "create-api-key", f"key-{next(_sids)}", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    return Client().post(
        "/api/v1/contacts",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


# --- (a) a CSV re-import with consent yes ------------------------------------------------------


@pytest.mark.parametrize("how", WITHDRAWALS)
def test_a_csv_reimport_with_consent_yes_is_refused_after_the_person_withdrew(
    how: str, ada: Contact, tmp_path: Path, outbox: Path, django_capture_on_commit_callbacks: Any
) -> None:
    withdraw(ada, how)
    channel = WITHDRAWALS[how]
    before = ledger(ada)

    run = import_file(tmp_path, f"email,phone,consent_{channel}\n{EMAIL},{PHONE},yes\n")

    assert ledger(ada) == before
    [line] = [r for r in report_rows(run) if r["row"] == "2"]
    assert line["column"] == f"consent_{channel}"
    assert line["outcome"] == "consent refused"
    assert line["reason"].startswith("withdrawn_by_contact:")
    assert "only they can give it back" in line["reason"]
    delivery = send(ada, channel, django_capture_on_commit_callbacks)
    assert delivery.reason == expected_skip(how)
    assert sent(outbox, channel) == []


def test_an_import_refuses_only_the_rows_whose_person_withdrew(tmp_path: Path) -> None:
    ada = ContactFactory.create(email=EMAIL)
    withdraw(ada, "one_click")
    grace = ContactFactory.create(email="grace@example.com")

    run = import_file(
        tmp_path,
        "email,consent_email\ngrace@example.com,yes\nada@example.com,yes\nnew@example.com,yes\n",
    )

    assert consent_current([grace.pk])[grace.pk] == {("email", "marketing"): "granted"}
    assert consent_current([ada.pk])[ada.pk] == {("email", "marketing"): "withdrawn"}
    new = Contact.objects.get(email="new@example.com")
    assert consent_current([new.pk])[new.pk] == {("email", "marketing"): "granted"}
    assert [(r["row"], r["outcome"]) for r in report_rows(run) if r["row"] != "1"] == [
        ("3", "consent refused")
    ]
    run.refresh_from_db()
    assert (run.rows_created, run.rows_updated, run.rows_unchanged) == (1, 1, 1)
    assert run.consents_refused == 1


def test_an_import_of_a_topic_is_refused_when_the_person_stopped_all_marketing(
    tmp_path: Path,
) -> None:
    """ "Stop all marketing" is on file for every topic the preference centre offers, even
    one the person never had."""
    ada = ContactFactory.create(email=EMAIL)
    withdraw(ada, "unsubscribe_link")
    before = ledger(ada)

    run = import_file(tmp_path, f"email,consent_email,consent_purpose\n{EMAIL},yes,newsletter\n")

    assert ledger(ada) == before
    assert [r["outcome"] for r in report_rows(run) if r["row"] == "2"] == ["consent refused"]


def test_an_import_of_another_topic_is_recorded_when_the_person_stopped_only_one(
    tmp_path: Path,
) -> None:
    ada = ContactFactory.create(email=EMAIL)
    url = unsubscribe_url(contact_id=ada.pk, channel="email", purpose="newsletter")
    Client().post(_path(url), {"scope": "topic"})

    import_file(tmp_path, f"email,consent_email,consent_purpose\n{EMAIL},yes,offers\n")

    assert consent_current([ada.pk])[ada.pk][("email", "offers")] == "granted"


# --- (b) an API upsert with a consent grant ----------------------------------------------------


@pytest.mark.parametrize("how", WITHDRAWALS)
def test_an_api_consent_grant_is_refused_after_the_person_withdrew(
    how: str, ada: Contact, outbox: Path, django_capture_on_commit_callbacks: Any
) -> None:
    withdraw(ada, how)
    channel = WITHDRAWALS[how]
    before = ledger(ada)

    response = api_post(
        {
            "email": EMAIL,
            "consent": [{"channel": channel, "status": "granted", "text": "Said yes on the phone"}],
        }
    )

    assert response.status_code == 200
    assert response.json()["consent"] == [
        {
            "channel": channel,
            "purpose": "marketing",
            "status": "refused",
            "reason": "withdrawn_by_contact",
        }
    ]
    assert response.json()["changed"] is False
    assert ledger(ada) == before
    delivery = send(ada, channel, django_capture_on_commit_callbacks)
    assert delivery.reason == expected_skip(how)
    assert sent(outbox, channel) == []


def test_the_api_reports_recorded_and_unchanged_consent_entries() -> None:
    body = {
        "email": EMAIL,
        "consent": [
            {"channel": "email", "status": "granted"},
            {"channel": "email", "purpose": "newsletter", "status": "withdrawn"},
        ],
    }

    first = api_post(body)
    again = api_post(body)

    assert first.status_code == 201
    assert [(c["purpose"], c["status"]) for c in first.json()["consent"]] == [
        ("marketing", "recorded"),
        ("newsletter", "recorded"),
    ]
    assert [(c["purpose"], c["status"]) for c in again.json()["consent"]] == [
        ("marketing", "unchanged"),
        ("newsletter", "unchanged"),
    ]
    assert "reason" not in first.json()["consent"][0]


def test_the_api_reports_a_grant_to_a_suppressed_address_as_refused() -> None:
    Suppression.objects.create(
        channel="email",
        address_hash=address_hash("email", "bounced@example.com"),
        reason=Suppression.Reason.HARD_BOUNCE,
    )

    response = api_post(
        {"email": "Bounced@example.com", "consent": [{"channel": "email", "status": "granted"}]}
    )

    assert response.status_code == 201
    assert response.json()["consent"] == [
        {"channel": "email", "purpose": "marketing", "status": "refused", "reason": "suppressed"}
    ]
    assert not ConsentRecord.objects.exists()


def test_the_api_reports_a_grant_to_an_erased_address_as_refused() -> None:
    from crm.services.privacy import contact_erase

    contact_erase(contact=ContactFactory.create(email=EMAIL), requested_by="test")

    response = api_post({"email": EMAIL, "consent": [{"channel": "email", "status": "granted"}]})

    assert response.json()["consent"] == [
        {"channel": "email", "purpose": "marketing", "status": "refused", "reason": "erased"}
    ]
    assert not ConsentRecord.objects.filter(status="granted").exists()


def test_an_api_withdrawal_is_always_recorded_even_after_the_person_withdrew(
    ada: Contact,
) -> None:
    withdraw(ada, "one_click")
    Suppression.objects.create(
        channel="email",
        address_hash=address_hash("email", EMAIL),
        reason=Suppression.Reason.COMPLAINT,
    )

    response = api_post(
        {
            "email": EMAIL,
            "consent": [{"channel": "email", "purpose": "offers", "status": "withdrawn"}],
        }
    )

    assert response.json()["consent"][0]["status"] == "recorded"
    assert ledger(ada)[-1] == ("email", "offers", "withdrawn", "api")


# --- (c) the admin: its CSV upload -------------------------------------------------------------


def test_an_admin_upload_granting_consent_the_person_withdrew_says_so_on_the_page(
    admin_client: Client,
    settings: Any,
    outbox: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    ada = ContactFactory.create(email=EMAIL)
    withdraw(ada, "unsubscribe_link")
    before = ledger(ada)
    content = f"email,consent_email\n{EMAIL},yes\ngrace@example.com,yes\n".encode()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:crm_importrun_add"),
            {"kind": "contacts", "file": SimpleUploadedFile("list.csv", content, "text/csv")},
        )

    assert ledger(ada) == before
    page = admin_client.get(response["Location"]).content.decode()
    assert "1 consent grant refused" in page
    assert "withdrew consent themselves" in page
    assert "only they can give it back" in page
    settings.CELERY_TASK_ALWAYS_EAGER = False
    delivery = send(ada, "email", django_capture_on_commit_callbacks)
    assert delivery.reason == Delivery.Reason.NO_CONSENT
    assert sent(outbox, "email") == []


def test_nobody_can_grant_consent_in_admin_directly(admin_client: Client) -> None:
    """The ledger is view-only in admin (tests/crm/test_contact_admin.py); the upload above is
    the only way staff grant consent, so it is the one that must refuse."""
    assert admin_client.get(reverse("admin:crm_consentrecord_add")).status_code == 403


# --- Whatever the timestamps say ----------------------------------------------------------------


@pytest.mark.parametrize("offset", [dt.timedelta(days=1), -dt.timedelta(days=1)])
def test_a_business_grant_in_the_ledger_never_outranks_the_persons_withdrawal(
    offset: dt.timedelta,
    ada: Contact,
    outbox: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Ledger rows written before this rule, or stamped later than the unsubscribe (an
    import's own date), do not resume sending."""
    withdraw(ada, "one_click")
    withdrawn_at = ConsentRecord.objects.filter(contact=ada).latest("occurred_at").occurred_at
    for source in (ConsentRecord.Source.IMPORT, ConsentRecord.Source.API):
        ConsentRecord(
            contact=ada,
            channel="email",
            status="granted",
            source=source,
            occurred_at=withdrawn_at + offset,
        ).save()

    delivery = send(ada, "email", django_capture_on_commit_callbacks)

    assert delivery.reason == Delivery.Reason.NO_CONSENT
    assert sent(outbox, "email") == []
    assert consent_current([ada.pk])[ada.pk][("email", "marketing")] == "withdrawn"


def test_a_business_grant_of_a_topic_does_not_outrank_the_persons_withdrawal_of_it(
    ada: Contact, outbox: Path, django_capture_on_commit_callbacks: Any
) -> None:
    url = one_click_unsubscribe_url(contact_id=ada.pk, channel="email", purpose="newsletter")
    Client().post(_path(url), {"List-Unsubscribe": "One-Click"})
    consent_record(
        contact=ada,
        channel="email",
        purpose="newsletter",
        status="granted",
        source=ConsentRecord.Source.API,
        occurred_at=timezone.now() + dt.timedelta(hours=1),
    )
    campaign = campaign_for([ada], kind=Campaign.Kind.BROADCAST, purpose="newsletter")

    with tasks_run_inline(), django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)

    assert Delivery.objects.get(campaign=campaign).reason == Delivery.Reason.NO_CONSENT
    assert sent(outbox, "email") == []


def test_the_hand_over_statement_also_refuses_a_business_grant_after_a_withdrawal(
    ada: Contact,
) -> None:
    """The last check, one statement per message, applies the same rule."""
    from campaigns.services.checks import delivery_hand_over

    withdraw(ada, "one_click")
    ConsentRecord(
        contact=ada,
        channel="email",
        status="granted",
        source=ConsentRecord.Source.IMPORT,
        occurred_at=timezone.now() + dt.timedelta(days=1),
    ).save()
    campaign = campaign_for([ada], kind=Campaign.Kind.BROADCAST)
    delivery = Delivery.objects.create(
        campaign=campaign, contact=ada, channel="email", status=Delivery.Status.SENDING
    )

    stopped = delivery_hand_over(
        delivery_id=delivery.pk,
        contact_id=ada.pk,
        channel="email",
        purpose="marketing",
        address=EMAIL,
        moment=timezone.now(),
    )

    assert stopped is not None and stopped[0] == Delivery.Reason.NO_CONSENT


# --- The person's own way back ----------------------------------------------------------------


def test_the_persons_double_opt_in_gives_consent_back_after_a_refused_import(
    ada: Contact,
    tmp_path: Path,
    outbox: Path,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    withdraw(ada, "unsubscribe_link")
    import_file(tmp_path, f"email,consent_email\n{EMAIL},yes\n")
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/subscribe/", {"email": EMAIL, "consent": "on"})
    [message] = sorted((outbox / "email").glob("*.eml"))
    match = CONFIRM_LINK.search(message.read_text().replace("=\n", ""))
    assert match
    for path in sorted((outbox / "email").glob("*.eml")):
        path.unlink()

    client.post(match.group(1))

    assert ledger(ada)[-1] == ("email", "marketing", "granted", "double_opt_in")
    send(ada, "email", django_capture_on_commit_callbacks)
    assert sent(outbox, "email") == [EMAIL]


def test_the_persons_preference_centre_gives_consent_back_over_an_old_business_grant(
    ada: Contact, outbox: Path, django_capture_on_commit_callbacks: Any
) -> None:
    withdraw(ada, "one_click")
    ConsentRecord(
        contact=ada,
        channel="email",
        status="granted",
        source=ConsentRecord.Source.IMPORT,
        occurred_at=timezone.now() + dt.timedelta(minutes=1),
    ).save()
    path = reverse("campaigns:preferences", args=[preferences_token(contact_id=ada.pk)])
    page = Client().get(path).content.decode()
    assert not re.search(r'name="email:marketing"[^>]*checked', page)

    Client().post(path, {"email:marketing": "on", "sms:marketing": "on", "pause": ""})

    assert ledger(ada)[-1] == ("email", "marketing", "granted", "preference_center")
    send(ada, "email", django_capture_on_commit_callbacks)
    assert sent(outbox, "email") == [EMAIL]


def test_the_persons_sms_start_gives_consent_back_after_a_refused_api_grant(
    ada: Contact, outbox: Path, django_capture_on_commit_callbacks: Any
) -> None:
    withdraw(ada, "sms_stop")
    api_post({"phone": PHONE, "consent": [{"channel": "sms", "status": "granted"}]})
    data = {"MessageSid": "SM" + "9" * 32, "From": PHONE, "To": "+15005550006", "Body": "START"}

    _twilio("/webhooks/twilio/inbound/", data)

    assert ledger(ada)[-1] == ("sms", "marketing", "granted", "sms_keyword")
    api = api_post({"phone": PHONE, "consent": [{"channel": "sms", "status": "granted"}]})
    assert api.json()["consent"][0]["status"] == "unchanged"
    send(ada, "sms", django_capture_on_commit_callbacks)
    assert sent(outbox, "sms") == [PHONE]


def test_a_business_grant_after_a_business_withdrawal_is_recorded(tmp_path: Path) -> None:
    """Only the person's own withdrawals are protected: the business can undo its own."""
    ada = ContactFactory.create(email=EMAIL)
    api_post({"email": EMAIL, "consent": [{"channel": "email", "status": "withdrawn"}]})

    run = import_file(tmp_path, f"email,consent_email\n{EMAIL},yes\n")

    assert consent_current([ada.pk])[ada.pk][("email", "marketing")] == "granted"
    assert [r for r in report_rows(run) if r["row"] == "2"] == []
