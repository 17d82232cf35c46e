"""Each action type's options come back from its validator in the type's own shape, and a
stored entry reaches run() in that shape."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import ContactFactory
from tests.triggers.helpers import make_rule
from triggers.actions import actions
from triggers.models import TriggerFiring


def test_set_attribute_validator_returns_its_typed_options() -> None:
    clean, problems = actions["set_attribute"].clean_options(
        {"attribute": "winback", "value": "3", "value_type": "number"}
    )
    assert problems == {}
    assert clean == {
        "id": "set_attribute",
        "attribute": "winback",
        "value": 3,
        "value_type": "number",
    }


def test_webhook_options_leave_out_the_id_and_keep_values_as_stored() -> None:
    stored = {"id": "webhook", "url": "https://hooks.example.com/x", "timeout": 2.5}
    assert actions["webhook"].options(stored) == {
        "url": "https://hooks.example.com/x",
        "timeout": 2.5,
    }


@pytest.mark.django_db
def test_a_stored_entry_runs_with_its_options_without_the_id() -> None:
    contact = ContactFactory.create()
    firing = TriggerFiring.objects.create(
        rule=make_rule(),
        rule_version=1,
        contact=contact,
        occurrence_key="once",
        fired_at=timezone.now(),
        batch="00000000-0000-0000-0000-000000000002",
    )
    outcome = actions["set_attribute"].run_entry(
        {"id": "set_attribute", "attribute": "vip", "value": True, "value_type": "boolean"},
        firing=firing,
        contact_id=contact.pk,
    )
    contact.refresh_from_db()
    assert contact.attributes["vip"] is True
    assert outcome == {"attribute": "vip", "value": True, "previous": None}
