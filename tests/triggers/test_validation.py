"""A rule is validated with the registry's forms; every error names its field's path."""

from __future__ import annotations

import pytest

from tests.triggers.helpers import rule_data
from triggers.services.rules import RuleInvalid, trigger_rule_save
from triggers.validation import rule_validate

pytestmark = pytest.mark.django_db


def _paths(data: dict) -> dict[str, str]:
    _, errors = rule_validate(data)
    return {error.path: error.message for error in errors}


def test_a_valid_rule_has_no_errors() -> None:
    assert _paths(rule_data()) == {}


def test_a_bad_count_is_reported_on_its_condition_and_field() -> None:
    data = rule_data()
    data["conditions"][1] = {
        "id": "event_count",
        "event": "product_viewed",
        "count": 0,
        "hours": 24,
    }
    assert list(_paths(data)) == ["conditions[1].count"]


def test_an_unknown_condition_type_is_reported_on_its_id() -> None:
    paths = _paths(rule_data(conditions=[{"id": "telepathy"}]))
    assert "conditions[0].id" in paths and "event_count" in paths["conditions[0].id"]


def test_an_unknown_option_is_reported() -> None:
    paths = _paths(rule_data(conditions=[{"id": "dormancy", "days": 60, "weeks": 2}]))
    assert "weeks" in paths["conditions[0].id"]


def test_a_property_filter_error_names_the_filter() -> None:
    data = rule_data(
        conditions=[
            {
                "id": "event_count",
                "event": "product_viewed",
                "count": 1,
                "hours": 1,
                "where": [{"property": "x y", "value": "a"}],
            }
        ]
    )
    assert "where[0].property" in _paths(data)["conditions[0].where"]


def test_missing_campaign_is_reported_on_the_action() -> None:
    paths = _paths(rule_data(actions=[{"id": "send_campaign", "campaign": "nope"}]))
    assert "no campaign" in paths["actions[0].campaign"]


def test_once_per_days_needs_days() -> None:
    assert "reentry_days" in _paths(rule_data(reentry_days=None))


def test_an_invalid_rule_is_never_saved() -> None:
    with pytest.raises(RuleInvalid) as caught:
        trigger_rule_save(data=rule_data(conditions=[]))
    assert [e.path for e in caught.value.errors] == ["conditions"]


def test_saving_a_change_bumps_the_version_and_records_history() -> None:
    rule = trigger_rule_save(data=rule_data())
    same = trigger_rule_save(data=rule_data(), rule=rule)
    changed = trigger_rule_save(data=rule_data(priority=3), rule=rule)
    assert (rule.version, same.version, changed.version) == (1, 1, 2)
    assert [v.snapshot["priority"] for v in changed.versions.all()] == [3, 0]
