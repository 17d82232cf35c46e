"""Trigger conditions on the shared vocabulary: event property filters, attribute operators
in either spelling, and the capability sweeps read from the condition types."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core.conditions import PropertyFilter, ValueTest
from tests.factories import ContactFactory, EventFactory
from tests.triggers.helpers import make_rule, rule_data
from triggers.compiler import condition_expression
from triggers.conditions import conditions
from triggers.facts import AttributeNeed, EventCountNeed
from triggers.models import TriggerRule
from triggers.snapshots import snapshots_build
from triggers.validation import rule_validate

pytestmark = pytest.mark.django_db


def _count(need: EventCountNeed, contact_id: int) -> int:
    [facts] = snapshots_build(contact_ids=[contact_id], needs=[need], now=timezone.now())
    return int(facts[need.key])


def test_a_property_named_like_a_lookup_is_read_as_a_property() -> None:
    contact = ContactFactory.create()
    EventFactory.create(contact=contact, properties={"contains": "kitchen"})
    EventFactory.create(contact=contact, properties={"contains": "garden"})
    need = EventCountNeed(
        event="product_viewed",
        hours=24,
        where=(PropertyFilter("contains", ValueTest("equals", "kitchen")),),
    )
    assert _count(need, contact.pk) == 1


def test_an_event_without_the_property_does_not_count_as_not_equal() -> None:
    contact = ContactFactory.create()
    EventFactory.create(contact=contact, properties={"category": "garden"})
    EventFactory.create(contact=contact, properties={})
    need = EventCountNeed(
        event="product_viewed",
        hours=24,
        where=(PropertyFilter("category", ValueTest("not_equals", "kitchen")),),
    )
    assert _count(need, contact.pk) == 1


def test_an_attribute_rule_stored_with_exists_still_compiles_and_validates() -> None:
    stored = {"id": "attribute", "attribute": "plan", "operator": "exists"}
    rule = make_rule()
    TriggerRule.objects.filter(pk=rule.pk).update(conditions=[stored])
    rule.refresh_from_db()
    key = AttributeNeed("plan").key
    assert condition_expression(rule.snapshot()["conditions"][0]) == {"$ex": {key: 1}}
    cleaned, errors = rule_validate(rule_data(conditions=[stored]))
    assert errors == []
    assert cleaned["conditions"] == [{"id": "attribute", "attribute": "plan", "operator": "is_set"}]


def test_only_conditions_narrowed_by_activity_rollups_declare_it() -> None:
    declared = {handler.id for handler in conditions if handler.candidates_read_rollups}
    assert declared == {"dormancy", "days_since_purchase"}
