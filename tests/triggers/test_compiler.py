"""The compiler is a pure function from rule snapshots to durable_rules JSON (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from triggers.compiler import CATCH_ALL, CompileError, explain_compile, ruleset_compile
from triggers.facts import EventCountNeed, SegmentNeed


def _rule(slug: str = "browse-abandonment", **overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": "Browse abandonment",
        "slug": slug,
        "enabled": True,
        "description": "",
        "conditions": [
            {"id": "event_count", "event": "product_viewed", "count": 3, "hours": 24},
            {"id": "event_absent", "event": "order_completed", "hours": 24},
        ],
        "match_mode": "all",
        "actions": [{"id": "send_campaign", "campaign": "browse-abandonment"}],
        "reentry": "once_per_days",
        "reentry_days": 7,
        "priority": 0,
        "active_from": None,
        "active_until": None,
        "audience_segment": None,
    }
    rule.update(overrides)
    return rule


def test_browse_abandonment_compiles_to_an_and_of_a_count_and_an_absence() -> None:
    compiled = ruleset_compile([_rule()])
    viewed = EventCountNeed(event="product_viewed", hours=24).key
    ordered = EventCountNeed(event="order_completed", hours=24).key
    assert compiled.definition["browse-abandonment"] == {
        "all": [
            {
                "m": {
                    "$and": [
                        {"$ex": {"cid": 1}},
                        {"$and": [{"$gte": {viewed: 3}}, {ordered: 0}]},
                    ]
                }
            }
        ]
    }


def test_every_ruleset_ends_with_a_catch_all_rule_so_every_snapshot_is_handled() -> None:
    compiled = ruleset_compile([_rule()])
    assert list(compiled.definition)[-1] == CATCH_ALL
    assert compiled.definition[CATCH_ALL] == {"all": [{"m": {"$ex": {"cid": 1}}}]}


def test_any_mode_joins_conditions_with_or() -> None:
    compiled = ruleset_compile([_rule(match_mode="any")])
    inner = compiled.definition["browse-abandonment"]["all"][0]["m"]["$and"][1]
    assert list(inner) == ["$or"]


def test_disabled_rules_are_left_out() -> None:
    compiled = ruleset_compile([_rule(), _rule("off", enabled=False)])
    assert compiled.rule_slugs == ("browse-abandonment",)


def test_rules_are_ordered_by_priority_then_slug() -> None:
    compiled = ruleset_compile([_rule("b"), _rule("a"), _rule("z", priority=5)])
    assert compiled.rule_slugs == ("z", "a", "b")


def test_the_name_is_versioned_by_content() -> None:
    first = ruleset_compile([_rule()])
    same = ruleset_compile([_rule()])
    changed = ruleset_compile([_rule(conditions=[{"id": "dormancy", "days": 60}])])
    assert first.name == same.name
    assert first.name != changed.name
    assert first.name.startswith("cadence_rules_v")


def test_active_window_and_audience_become_guards() -> None:
    compiled = ruleset_compile(
        [
            _rule(
                active_from="2026-03-01T00:00:00+00:00",
                active_until="2026-04-01T00:00:00+00:00",
                audience_segment="email-subscribers",
            )
        ]
    )
    terms = compiled.definition["browse-abandonment"]["all"][0]["m"]["$and"]
    assert {"$gte": {"now_ts": 1772323200}} in terms
    assert {"$lt": {"now_ts": 1775001600}} in terms
    assert {SegmentNeed("email-subscribers").member_key: True} in terms
    assert SegmentNeed("email-subscribers") in compiled.needs


def test_dormancy_compiles_to_inactive_days() -> None:
    compiled = ruleset_compile([_rule(conditions=[{"id": "dormancy", "days": 60}])])
    terms = compiled.definition["browse-abandonment"]["all"][0]["m"]["$and"]
    assert terms[-1] == {"$gte": {"inactive_days": 60}}


def test_local_time_window_past_midnight_becomes_an_or() -> None:
    compiled = ruleset_compile(
        [_rule(conditions=[{"id": "local_time", "start": "22:00", "end": "06:00"}])]
    )
    terms = compiled.definition["browse-abandonment"]["all"][0]["m"]["$and"]
    assert terms[-1] == {
        "$or": [{"$gte": {"local_minutes": 1320}}, {"$lt": {"local_minutes": 360}}]
    }


def test_lifecycle_with_several_stages_is_an_or_of_equalities() -> None:
    compiled = ruleset_compile(
        [_rule(conditions=[{"id": "lifecycle", "stages": ["dormant", "churned"]}])]
    )
    terms = compiled.definition["browse-abandonment"]["all"][0]["m"]["$and"]
    assert terms[-1] == {"$or": [{"lifecycle": "dormant"}, {"lifecycle": "churned"}]}


def test_marketer_text_never_becomes_a_fact_key() -> None:
    compiled = ruleset_compile(
        [
            _rule(
                conditions=[
                    {"id": "attribute", "attribute": "plan", "operator": "equals", "value": "pro"},
                    {"id": "event_count", "event": "a.b$c", "count": 1, "hours": 1},
                ]
            )
        ]
    )
    text = str(compiled.definition)
    assert "a.b$c" not in text
    assert "'plan'" not in text


def test_explain_has_one_engine_rule_per_condition() -> None:
    compiled = explain_compile(_rule(audience_segment="vip"))
    assert list(compiled.definition) == [
        "audience_segment",
        "conditions[0]",
        "conditions[1]",
        CATCH_ALL,
    ]


def test_an_unknown_condition_type_does_not_compile() -> None:
    with pytest.raises(CompileError):
        ruleset_compile([_rule(conditions=[{"id": "telepathy"}])])
