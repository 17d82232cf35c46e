"""`manage.py crm data-quality` prints the same figures as the admin report."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from crm.models import Contact
from tests.factories import ConsentFactory, ContactFactory


@pytest.mark.django_db
def test_the_report_counts_incomplete_contacts() -> None:
    complete = ContactFactory.create(email="ada@example.com", timezone="Europe/London")
    ConsentFactory.create(contact=complete)
    ContactFactory.create(email="nozone@example.com", timezone="")
    Contact.objects.create(external_id="CUST-1", first_name="", last_name="")
    out = StringIO()
    call_command("crm", "data-quality", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "3 live contacts"

    def count(label_start: str) -> int:
        [line] = [line for line in lines if label_start in line]
        return int(line.split()[0].replace(",", ""))

    assert count("No email and no phone") == 1
    assert count("No time zone") == 2
    assert count("No first or last name") == 1
    assert count("No consent entry") == 2
    assert count("Unreachable") == 0


@pytest.mark.django_db
def test_erased_contacts_are_not_counted() -> None:
    ContactFactory.create(is_erased=True)
    out = StringIO()
    call_command("crm", "data-quality", stdout=out)
    assert out.getvalue().splitlines()[0] == "0 live contacts"
