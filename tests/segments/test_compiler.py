"""The segment compiler: definitions parsed with errors named by path, compiled to one SQL
query, and the contacts each condition type selects on fixture data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import ConsentRecord, Contact
from segments.compiler import DefinitionError, definition_compile, definition_parse
from segments.compiler.forms import RFM_GROUPS
from segments.models.analytics import (
    ClusteringRun,
    ContactCluster,
    ContactLifecycle,
    ContactPrediction,
    ContactRFM,
    RFMGroup,
)
from tests.factories import ConsentFactory, ContactFactory, EventFactory

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def matching(definition: dict[str, Any]) -> set[str]:
    """First names of the contacts the definition selects at NOW."""
    query = Contact.objects.filter(is_erased=False).filter(definition_compile(definition, now=NOW))
    return set(query.values_list("first_name", flat=True))


def sql(definition: dict[str, Any]) -> str:
    return str(Contact.objects.filter(definition_compile(definition, now=NOW)).query)


def one(condition: dict[str, Any]) -> dict[str, Any]:
    return {"op": "and", "conditions": [condition]}


def errors_of(definition: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        definition_parse(definition)
    return caught.value.messages


# --- Parsing and validation (no database) --------------------------------------------------


def test_a_bad_option_is_named_by_its_path() -> None:
    definition = {
        "op": "and",
        "conditions": [
            {"type": "country", "countries": ["FR"]},
            {"type": "timezone", "zones": ["Europe/Paris"]},
            {
                "type": "behaviour",
                "event": "product_viewed",
                "operator": "at_least",
                "count": 3,
                "days": 0,
            },
        ],
    }
    assert errors_of(definition) == ["conditions[2].days: must be a positive integer"]


def test_errors_in_nested_groups_and_property_filters_name_the_full_path() -> None:
    definition = {
        "op": "or",
        "conditions": [
            {
                "op": "not",
                "conditions": [
                    {
                        "type": "behaviour",
                        "event": "product_viewed",
                        "operator": "at_least",
                        "count": 1,
                        "days": 7,
                        "where": [{"property": "category", "operator": "in", "value": "kitchen"}],
                    }
                ],
            }
        ],
    }
    assert errors_of(definition) == [
        'conditions[0].conditions[0].where[0].value: must be a non-empty list for "in", '
        'e.g. ["pro", "team"]'
    ]


def test_an_unknown_condition_type_and_an_unknown_option_are_reported() -> None:
    messages = errors_of(
        {
            "op": "and",
            "conditions": [
                {"type": "weather"},
                {"type": "country", "countries": ["FR"], "colour": 1},
            ],
        }
    )
    assert messages[0].startswith("conditions[0].type: 'weather' is not a condition type")
    assert messages[1].startswith("conditions[1].colour: is not an option of a country condition")


def test_not_takes_exactly_one_condition() -> None:
    assert errors_of({"op": "not", "conditions": []}) == [
        'conditions: "not" takes exactly one condition, got 0'
    ]


def test_an_invalid_time_zone_is_named() -> None:
    assert errors_of(one({"type": "timezone", "zones": ["Europe/Paris", "Mars/Olympus"]})) == [
        "conditions[0].zones: item 1: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Paris)"
    ]


def test_compiling_runs_no_query() -> None:
    definition = {
        "op": "and",
        "conditions": [
            {
                "type": "behaviour",
                "event": "product_viewed",
                "operator": "at_least",
                "count": 3,
                "days": 7,
            },
            {"type": "segment", "segment": "vip", "member": True},
            {"type": "consent", "channel": "email", "state": "has"},
            {"type": "cluster", "cluster": 1},
        ],
    }
    # Without the django_db mark any query would raise: compiling must not need one.
    assert definition_compile(definition, now=NOW)


def test_the_rfm_group_choices_are_the_analytics_groups() -> None:
    assert list(RFM_GROUPS) == [(value, str(label)) for value, label in RFMGroup.choices]


# --- Compiled forms ------------------------------------------------------------------------


def test_counted_behaviour_compiles_to_one_grouped_subquery() -> None:
    text = sql(
        one(
            {
                "type": "behaviour",
                "event": "product_viewed",
                "operator": "at_least",
                "count": 3,
                "days": 7,
            }
        )
    )
    assert '"crm_contact"."id" IN (SELECT' in text
    assert "GROUP BY" in text
    assert "HAVING COUNT(*) >= 3" in text


def test_did_not_do_compiles_to_not_exists() -> None:
    text = sql(
        one({"type": "behaviour", "event": "order_completed", "operator": "none", "days": 7})
    )
    assert "NOT (EXISTS(SELECT" in text
    assert "HAVING" not in text


def test_at_most_compiles_to_not_in_the_contacts_who_did_more() -> None:
    text = sql(
        one(
            {
                "type": "behaviour",
                "event": "order_completed",
                "operator": "at_most",
                "count": 2,
                "days": 30,
            }
        )
    )
    assert 'NOT ("crm_contact"."id" IN (SELECT' in text
    assert "HAVING COUNT(*) > 2" in text


def test_consent_compiles_to_the_latest_ledger_entry() -> None:
    text = sql(one({"type": "consent", "channel": "email", "purpose": "marketing", "state": "has"}))
    assert 'FROM "crm_consentrecord" U0' in text
    assert 'ORDER BY U0."occurred_at" DESC, U0."id" DESC' in text


@pytest.mark.django_db
def test_a_whole_definition_is_one_query() -> None:
    definition = {
        "op": "and",
        "conditions": [
            {
                "type": "behaviour",
                "event": "product_viewed",
                "operator": "at_least",
                "count": 2,
                "days": 7,
            },
            {
                "op": "not",
                "conditions": [
                    {"type": "behaviour", "event": "order_completed", "operator": "none", "days": 7}
                ],
            },
            {"type": "consent", "channel": "email", "state": "has"},
            {"type": "country", "countries": ["FR"]},
        ],
    }
    query = Contact.objects.filter(definition_compile(definition, now=NOW))
    with CaptureQueriesContext(connection) as queries:
        list(query)
    assert len(queries) == 1


# --- Results on fixture data ---------------------------------------------------------------


@pytest.mark.django_db
def test_attribute_equals_on_a_custom_attribute() -> None:
    ContactFactory.create(first_name="Pro", attributes={"plan": "pro"})
    ContactFactory.create(first_name="Free", attributes={"plan": "free"})
    ContactFactory.create(first_name="None", attributes={})
    assert matching(
        one({"type": "attribute", "field": "attributes.plan", "operator": "equals", "value": "pro"})
    ) == {"Pro"}


@pytest.mark.django_db
def test_attribute_not_equals_includes_contacts_without_the_attribute() -> None:
    ContactFactory.create(first_name="Pro", attributes={"plan": "pro"})
    ContactFactory.create(first_name="Free", attributes={"plan": "free"})
    ContactFactory.create(first_name="None", attributes={})
    assert matching(
        one(
            {
                "type": "attribute",
                "field": "attributes.plan",
                "operator": "not_equals",
                "value": "pro",
            }
        )
    ) == {"Free", "None"}


@pytest.mark.django_db
def test_attribute_in_contains_and_number_comparisons() -> None:
    ContactFactory.create(first_name="A", attributes={"plan": "pro", "points": 150, "in": "x"})
    ContactFactory.create(first_name="B", attributes={"plan": "team", "points": 20})
    ContactFactory.create(first_name="C", attributes={"plan": "free"})
    assert matching(
        one(
            {
                "type": "attribute",
                "field": "attributes.plan",
                "operator": "in",
                "value": ["pro", "team"],
            }
        )
    ) == {"A", "B"}
    assert matching(
        one(
            {"type": "attribute", "field": "attributes.plan", "operator": "contains", "value": "RE"}
        )
    ) == {"C"}
    assert matching(
        one({"type": "attribute", "field": "attributes.points", "operator": "gt", "value": 100})
    ) == {"A"}
    assert matching(
        one({"type": "attribute", "field": "attributes.points", "operator": "lt", "value": 100})
    ) == {"B"}
    # A key named like a lookup is still just a key.
    assert matching(
        one({"type": "attribute", "field": "attributes.in", "operator": "equals", "value": "x"})
    ) == {"A"}


@pytest.mark.django_db
def test_attribute_is_set_and_is_not_set() -> None:
    ContactFactory.create(first_name="Phone", phone="+14155550101", attributes={"vip": True})
    ContactFactory.create(first_name="NoPhone", phone=None)
    assert matching(one({"type": "attribute", "field": "phone", "operator": "is_set"})) == {"Phone"}
    assert matching(one({"type": "attribute", "field": "phone", "operator": "is_not_set"})) == {
        "NoPhone"
    }
    assert matching(
        one({"type": "attribute", "field": "attributes.vip", "operator": "is_set"})
    ) == {"Phone"}
    assert matching(
        one({"type": "attribute", "field": "attributes.vip", "operator": "is_not_set"})
    ) == {"NoPhone"}


@pytest.mark.django_db
def test_attribute_on_a_contact_field() -> None:
    ContactFactory.create(first_name="Ada", locale="en-GB")
    ContactFactory.create(first_name="Bob", locale="de-DE")
    assert matching(
        one({"type": "attribute", "field": "locale", "operator": "equals", "value": "en-GB"})
    ) == {"Ada"}
    assert matching(
        one({"type": "attribute", "field": "first_name", "operator": "contains", "value": "ad"})
    ) == {"Ada"}


@pytest.mark.django_db
def test_consent_has_and_lacks_follow_the_latest_entry() -> None:
    granted = ContactFactory.create(first_name="Granted")
    withdrawn = ContactFactory.create(first_name="Withdrawn")
    ContactFactory.create(first_name="Never")
    ConsentFactory.create(contact=granted, occurred_at=ago(10))
    ConsentFactory.create(contact=withdrawn, occurred_at=ago(10))
    ConsentFactory.create(
        contact=withdrawn, status=ConsentRecord.Status.WITHDRAWN, occurred_at=ago(1)
    )
    has = one({"type": "consent", "channel": "email", "purpose": "marketing", "state": "has"})
    lacks = one({"type": "consent", "channel": "email", "purpose": "marketing", "state": "lacks"})
    assert matching(has) == {"Granted"}
    assert matching(lacks) == {"Withdrawn", "Never"}
    assert matching(one({"type": "consent", "channel": "sms", "state": "has"})) == set()


@pytest.fixture
def shoppers() -> None:
    """Three views of kitchen items this week (Keen), one view (Once), old views only (Old),
    nothing at all (Idle), two views and a purchase (Buyer)."""
    keen = ContactFactory.create(first_name="Keen")
    for days in (1, 2, 3):
        EventFactory.create(contact=keen, occurred_at=ago(days), properties={"category": "kitchen"})
    EventFactory.create(
        contact=ContactFactory.create(first_name="Once"),
        occurred_at=ago(2),
        properties={"category": "garden"},
    )
    old = ContactFactory.create(first_name="Old")
    for days in (20, 21, 22):
        EventFactory.create(contact=old, occurred_at=ago(days), properties={"category": "kitchen"})
    ContactFactory.create(first_name="Idle")
    buyer = ContactFactory.create(first_name="Buyer")
    EventFactory.create(contact=buyer, occurred_at=ago(1), properties={"category": "kitchen"})
    EventFactory.create(contact=buyer, occurred_at=ago(1), properties={"category": "kitchen"})
    EventFactory.create(
        contact=buyer,
        type="order_completed",
        occurred_at=ago(1),
        properties={},
        value=Decimal("20"),
    )


def behaviour(
    operator: str, count: int | None = None, days: int = 7, **extra: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "behaviour",
        "event": "product_viewed",
        "operator": operator,
        "days": days,
        **extra,
    }
    if count is not None:
        data["count"] = count
    return one(data)


@pytest.mark.django_db
def test_behaviour_at_least_counts_events_in_the_window(shoppers: None) -> None:
    assert matching(behaviour("at_least", 2)) == {"Keen", "Buyer"}
    assert matching(behaviour("at_least", 1)) == {"Keen", "Once", "Buyer"}
    assert matching(behaviour("at_least", 3, days=30)) == {"Keen", "Old"}


@pytest.mark.django_db
def test_behaviour_at_most_includes_contacts_with_no_events(shoppers: None) -> None:
    assert matching(behaviour("at_most", 1)) == {"Once", "Old", "Idle"}


@pytest.mark.django_db
def test_behaviour_exactly(shoppers: None) -> None:
    assert matching(behaviour("exactly", 2)) == {"Buyer"}
    assert matching(behaviour("exactly", 0)) == {"Old", "Idle"}


@pytest.mark.django_db
def test_behaviour_none_means_did_not_do_it_in_the_window(shoppers: None) -> None:
    assert matching(behaviour("none")) == {"Old", "Idle"}


@pytest.mark.django_db
def test_behaviour_property_filters(shoppers: None) -> None:
    kitchen = [{"property": "category", "operator": "equals", "value": "kitchen"}]
    assert matching(behaviour("at_least", 1, where=kitchen)) == {"Keen", "Buyer"}
    assert matching(behaviour("none", where=kitchen)) == {"Once", "Old", "Idle"}


@pytest.mark.django_db
def test_viewed_but_did_not_buy(shoppers: None) -> None:
    definition = {
        "op": "and",
        "conditions": [
            {
                "type": "behaviour",
                "event": "product_viewed",
                "operator": "at_least",
                "count": 2,
                "days": 7,
            },
            {"type": "behaviour", "event": "order_completed", "operator": "none", "days": 7},
        ],
    }
    assert matching(definition) == {"Keen"}


@pytest.mark.django_db
def test_recency_leaves_out_contacts_who_never_did_it_unless_asked() -> None:
    ContactFactory.create(first_name="Recent", last_purchase_at=ago(3))
    ContactFactory.create(first_name="Lapsed", last_purchase_at=ago(90))
    ContactFactory.create(first_name="Never", last_purchase_at=None)
    more = {"type": "recency", "of": "purchase", "operator": "more_than", "days": 60}
    assert matching(one(more)) == {"Lapsed"}
    assert matching(one({**more, "include_never": True})) == {"Lapsed", "Never"}
    assert matching(
        one({"type": "recency", "of": "purchase", "operator": "less_than", "days": 60})
    ) == {"Recent"}


@pytest.mark.django_db
def test_recency_of_activity() -> None:
    ContactFactory.create(first_name="Active", last_activity_at=ago(1))
    ContactFactory.create(first_name="Dormant", last_activity_at=ago(61))
    assert matching(
        one({"type": "recency", "of": "activity", "operator": "at_least", "days": 60})
    ) == {"Dormant"}


def _rfm(contact: Contact, group: str, r: int, f: int, m: int) -> None:
    ContactRFM.objects.create(
        contact=contact,
        group=group,
        recency_score=r,
        frequency_score=f,
        monetary_score=m,
        recency_days=3,
        frequency=2,
        monetary=Decimal("50"),
        period_days=365,
        computed_at=NOW,
    )


@pytest.mark.django_db
def test_rfm_group_and_score() -> None:
    _rfm(ContactFactory.create(first_name="Champ"), "champions", 5, 5, 5)
    _rfm(ContactFactory.create(first_name="Lost"), "lost", 1, 1, 2)
    ContactFactory.create(first_name="Unscored")
    assert matching(one({"type": "rfm", "group": "champions"})) == {"Champ"}
    assert matching(one({"type": "rfm", "score": "monetary", "operator": "lte", "value": 2})) == {
        "Lost"
    }
    assert matching(one({"type": "rfm", "score": "recency", "operator": "equals", "value": 5})) == {
        "Champ"
    }


@pytest.mark.django_db
def test_lifecycle_stage() -> None:
    ContactLifecycle.objects.create(
        contact=ContactFactory.create(first_name="Sleepy"), stage="dormant", since=NOW
    )
    ContactLifecycle.objects.create(
        contact=ContactFactory.create(first_name="Busy"), stage="active", since=NOW
    )
    assert matching(one({"type": "lifecycle", "stages": ["dormant", "churned"]})) == {"Sleepy"}


@pytest.mark.django_db
def test_cluster_means_the_latest_run_unless_a_run_is_named() -> None:
    a, b = ContactFactory.create(first_name="A"), ContactFactory.create(first_name="B")
    old = ClusteringRun.objects.create(k=2, seed=1, created_at=ago(10))
    new = ClusteringRun.objects.create(k=2, seed=1, created_at=ago(1))
    ContactCluster.objects.create(run=old, contact=a, cluster=1)
    ContactCluster.objects.create(run=new, contact=b, cluster=1)
    ContactCluster.objects.create(run=new, contact=a, cluster=0)
    assert matching(one({"type": "cluster", "cluster": 1})) == {"B"}
    assert matching(one({"type": "cluster", "cluster": 1, "run": old.pk})) == {"A"}


@pytest.mark.django_db
def test_prediction_probability() -> None:
    for name, p_alive in (("Alive", 0.9), ("Fading", 0.2)):
        ContactPrediction.objects.create(
            contact=ContactFactory.create(first_name=name),
            p_alive=p_alive,
            expected_purchases=1.0,
            horizon_days=30,
            computed_at=NOW,
        )
    ContactFactory.create(first_name="NeverBought")
    assert matching(
        one({"type": "prediction", "metric": "p_alive", "operator": "gt", "value": 0.5})
    ) == {"Alive"}
    assert matching(
        one({"type": "prediction", "metric": "p_alive", "operator": "lt", "value": 0.5})
    ) == {"Fading"}


@pytest.mark.django_db
def test_segment_member_and_not_member_use_current_memberships() -> None:
    from segments.models import Segment, SegmentMembership

    vip = Segment.objects.create(name="VIP", slug="vip")
    current, former = (
        ContactFactory.create(first_name="Current"),
        ContactFactory.create(first_name="Former"),
    )
    ContactFactory.create(first_name="Outsider")
    SegmentMembership.objects.create(segment=vip, contact=current, entered_at=ago(5))
    SegmentMembership.objects.create(
        segment=vip, contact=former, entered_at=ago(9), exited_at=ago(2)
    )
    assert matching(one({"type": "segment", "segment": "vip", "member": True})) == {"Current"}
    assert matching(one({"type": "segment", "segment": "vip", "member": False})) == {
        "Former",
        "Outsider",
    }


@pytest.mark.django_db
def test_timezone_and_country() -> None:
    ContactFactory.create(first_name="Paris", timezone="Europe/Paris", country="FR")
    ContactFactory.create(first_name="Berlin", timezone="Europe/Berlin", country="DE")
    assert matching(one({"type": "timezone", "zones": ["Europe/Berlin"]})) == {"Berlin"}
    assert matching(one({"type": "country", "operator": "not_in", "countries": ["de"]})) == {
        "Paris"
    }


@pytest.mark.django_db
def test_or_and_not_combine() -> None:
    ContactFactory.create(first_name="Paris", country="FR", attributes={"plan": "pro"})
    ContactFactory.create(first_name="Berlin", country="DE", attributes={"plan": "free"})
    ContactFactory.create(first_name="Rome", country="IT", attributes={"plan": "pro"})
    definition = {
        "op": "or",
        "conditions": [
            {"type": "country", "countries": ["DE"]},
            {
                "op": "not",
                "conditions": [
                    {
                        "type": "attribute",
                        "field": "attributes.plan",
                        "operator": "equals",
                        "value": "pro",
                    }
                ],
            },
            {"op": "and", "conditions": [{"type": "country", "countries": ["IT"]}]},
        ],
    }
    assert matching(definition) == {"Berlin", "Rome"}


@pytest.mark.django_db
def test_segment_queryset_leaves_out_erased_contacts() -> None:
    from segments.compiler import segment_queryset
    from segments.models import Segment

    ContactFactory.create(first_name="Kept", country="FR")
    ContactFactory.create(first_name="Erased", country="FR", is_erased=True)
    segment = Segment(
        name="France", slug="france", definition=one({"type": "country", "countries": ["FR"]})
    )
    assert set(segment_queryset(segment, now=NOW).values_list("first_name", flat=True)) == {"Kept"}
