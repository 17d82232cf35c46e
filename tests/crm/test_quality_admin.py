"""The data-quality pages of the admin: the report, duplicates side by side, merge audits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from crm.models import Contact, ContactMerge, Event, MergeCandidate
from crm.services.merge import contact_merge
from tests.factories import ConsentFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db

REPORT = "/admin/crm/dataquality/"
CANDIDATES = "/admin/crm/mergecandidate/"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", None))
    return client


@pytest.fixture
def viewer_client() -> Client:
    """A marketer who may look at everything here and change nothing."""
    user = User.objects.create_user("viewer", "viewer@example.com", None, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="crm",
            codename__in=["view_contact", "view_mergecandidate", "view_contactmerge"],
        )
    )
    client = Client()
    client.force_login(user)
    return client


def _report_counts(html: str) -> dict[str, int]:
    rows = re.findall(
        r'<a href="/admin/crm/dataquality/\?issue=(\w+)">.*?</a></td>'
        r'<td class="quality-number quality-count">([\d,]+)</td>',
        html,
    )
    return {key: int(count.replace(",", "")) for key, count in rows}


def _pair(**b_fields: Any) -> MergeCandidate:
    a = ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    fields = {"first_name": "Katharine", "last_name": "Johnson", "phone": "+41612345678"}
    b = ContactFactory.create(**{**fields, **b_fields})
    return MergeCandidate.objects.create(
        contact_a=a, contact_b=b, score=88, reasons=["same phone number", "name similarity 95"]
    )


# --- The report ---------------------------------------------------------------------------


def test_the_report_counts_each_issue_and_links_to_the_contacts(
    superuser_client: Client,
) -> None:
    ContactFactory.create(email=None, phone=None, external_id=None, first_name="", last_name="")
    ContactFactory.create(timezone="Mars/Olympus_Mons")
    ConsentFactory.create(contact=ContactFactory.create(timezone=""))
    _pair()

    response = superuser_client.get(REPORT)

    assert response.status_code == 200
    counts = _report_counts(response.content.decode())
    assert counts == {
        "unreachable": 1,
        "invalid_email": 0,
        "invalid_phone": 0,
        "invalid_timezone": 1,
        "missing_name": 1,
        "no_address": 1,
        "no_timezone": 1,
        "no_consent": 4,
    }
    assert 'href="/admin/crm/mergecandidate/?status__exact=open"' in response.content.decode()


def test_the_report_counts_in_a_fixed_number_of_queries(
    superuser_client: Client, django_assert_max_num_queries: Any
) -> None:
    for _ in range(30):
        ContactFactory.create(timezone="")

    with django_assert_max_num_queries(8):
        response = superuser_client.get(REPORT)

    assert _report_counts(response.content.decode())["no_timezone"] == 30


def test_the_admin_index_links_to_the_report(superuser_client: Client) -> None:
    response = superuser_client.get("/admin/")

    assert f'href="{REPORT}"' in response.content.decode()


def test_an_issue_link_lists_only_the_contacts_with_that_issue(superuser_client: Client) -> None:
    bad = ContactFactory.create(timezone="Mars/Olympus_Mons", first_name="Marvin")
    ContactFactory.create(timezone="Europe/Paris", first_name="Paula")

    response = superuser_client.get(REPORT, {"issue": "invalid_timezone"})

    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="/admin/crm/contact/{bad.pk}/change/"' in html
    assert "Paula" not in html


def test_names_in_the_issue_list_are_escaped(superuser_client: Client) -> None:
    ContactFactory.create(first_name=XSS, timezone="")

    html = superuser_client.get(REPORT, {"issue": "no_timezone"}).content.decode()

    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_viewer_sees_the_report(viewer_client: Client) -> None:
    ContactFactory.create(timezone="")

    response = viewer_client.get(REPORT)

    assert response.status_code == 200
    assert _report_counts(response.content.decode())["no_timezone"] == 1


def test_staff_without_contact_permissions_is_refused_the_report() -> None:
    user = User.objects.create_user("nobody", "n@example.com", None, is_staff=True)
    client = Client()
    client.force_login(user)

    assert client.get(REPORT).status_code == 403


# --- Merge candidates ---------------------------------------------------------------------


def test_the_candidate_page_shows_both_contacts_side_by_side_with_their_counts(
    superuser_client: Client,
) -> None:
    candidate = _pair()
    EventFactory.create_batch(3, contact=candidate.contact_a)
    ConsentFactory.create(contact=candidate.contact_b)

    html = superuser_client.get(f"{CANDIDATES}{candidate.pk}/change/").content.decode()

    assert "Katherine" in html and "Katharine" in html
    assert "+33612345678" in html and "+41612345678" in html
    assert re.search(r"<th scope=\"row\">Events</th><td>3</td><td>0</td>", html)
    assert re.search(r"<th scope=\"row\">Consent records</th><td>0</td><td>1</td>", html)
    assert "same phone number" in html
    assert f'name="_keep" value="{candidate.contact_a_id}"' in html


def test_names_on_the_candidate_pages_are_escaped(superuser_client: Client) -> None:
    candidate = _pair(last_name=XSS)

    for url in (CANDIDATES, f"{CANDIDATES}{candidate.pk}/change/"):
        html = superuser_client.get(url).content.decode()
        assert XSS not in html
        assert "&lt;script&gt;" in html


def test_merging_from_the_candidate_page_keeps_the_chosen_contact(
    superuser_client: Client,
) -> None:
    candidate = _pair()
    keep, other = candidate.contact_b, candidate.contact_a
    EventFactory.create(contact=other)

    response = superuser_client.post(f"{CANDIDATES}{candidate.pk}/change/", {"_keep": str(keep.pk)})

    audit = ContactMerge.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/crm/contactmerge/{audit.pk}/change/"
    assert not Contact.objects.filter(pk=other.pk).exists()
    assert Event.objects.get().contact_id == keep.pk
    assert audit.merged_by == "root"


def test_not_a_duplicate_on_the_candidate_page_dismisses_the_pair(
    superuser_client: Client,
) -> None:
    candidate = _pair()

    superuser_client.post(f"{CANDIDATES}{candidate.pk}/change/", {"_dismiss": "1"})

    candidate.refresh_from_db()
    assert candidate.status == MergeCandidate.Status.DISMISSED
    assert candidate.reviewed_by is not None and candidate.reviewed_by.username == "root"
    assert Contact.objects.count() == 2


def test_the_merge_action_merges_the_selected_pairs(superuser_client: Client) -> None:
    candidate = _pair()

    response = superuser_client.post(
        CANDIDATES,
        {"action": "merge_keep_best", "_selected_action": [str(candidate.pk)]},
        follow=True,
    )

    assert Contact.objects.count() == 1
    assert "Merged 1 pair." in response.content.decode()


def test_the_not_a_duplicate_action_dismisses_the_selected_pairs(
    superuser_client: Client,
) -> None:
    candidate = _pair()

    superuser_client.post(
        CANDIDATES, {"action": "dismiss", "_selected_action": [str(candidate.pk)]}
    )

    candidate.refresh_from_db()
    assert candidate.status == MergeCandidate.Status.DISMISSED


def test_a_viewer_sees_the_comparison_without_merge_buttons(viewer_client: Client) -> None:
    candidate = _pair()

    response = viewer_client.get(f"{CANDIDATES}{candidate.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Katharine" in html
    assert 'name="_keep"' not in html


def test_a_viewer_cannot_merge_by_posting(viewer_client: Client) -> None:
    candidate = _pair()

    response = viewer_client.post(
        f"{CANDIDATES}{candidate.pk}/change/", {"_keep": str(candidate.contact_a_id)}
    )

    assert response.status_code == 403
    assert Contact.objects.count() == 2


def test_a_viewer_is_offered_no_merge_action(viewer_client: Client) -> None:
    _pair()

    html = viewer_client.get(CANDIDATES).content.decode()

    assert "merge_keep_best" not in html
    assert viewer_client.post(
        CANDIDATES, {"action": "merge_keep_best", "_selected_action": ["1"]}
    ).status_code in (200, 302, 403)
    assert Contact.objects.count() == 2


# --- Merge audits -------------------------------------------------------------------------


def test_the_merge_audit_shows_the_duplicates_profile_read_only(
    superuser_client: Client,
) -> None:
    survivor = ContactFactory.create(email="ada@example.com")
    duplicate = ContactFactory.create(email="ada@old.example", first_name=XSS)
    audit = contact_merge(survivor=survivor, duplicate=duplicate, merged_by="root")

    html = superuser_client.get(f"/admin/crm/contactmerge/{audit.pk}/change/").content.decode()

    assert "ada@old.example" in html
    assert XSS not in html and "&lt;script&gt;" in html
    assert 'name="_save"' not in html
    assert superuser_client.get("/admin/crm/contactmerge/add/").status_code == 403
    assert superuser_client.get(f"/admin/crm/contactmerge/{audit.pk}/delete/").status_code == 403
