"""Rules stored with the older presence spelling (`exists` / `not_exists`) are rewritten by a
data migration, so that saving one unchanged records no new version."""

import importlib

import pytest
from django.apps import apps

from tests.triggers.helpers import make_rule, rule_data
from triggers.models import TriggerRule
from triggers.services.rules import trigger_rule_save

pytestmark = pytest.mark.django_db

migration = importlib.import_module("triggers.migrations.0004_presence_operator_spelling")

OLD = [
    {"id": "attribute", "attribute": "plan", "operator": "exists"},
    {"id": "attribute", "attribute": "vip", "operator": "not_exists"},
    {"id": "event_count", "event": "product_viewed", "count": 3, "hours": 24},
]


def _stored_with_old_spelling() -> TriggerRule:
    rule = make_rule(conditions=OLD)
    TriggerRule.objects.filter(pk=rule.pk).update(conditions=OLD)
    rule.refresh_from_db()
    return rule


def test_the_migration_respells_presence_tests_and_nothing_else() -> None:
    rule = _stored_with_old_spelling()
    migration.forwards(apps, None)
    rule.refresh_from_db()
    assert [c.get("operator") for c in rule.conditions] == ["is_set", "is_not_set", None]
    assert rule.conditions[2] == OLD[2]
    migration.backwards(apps, None)
    rule.refresh_from_db()
    assert rule.conditions == OLD


def test_a_migrated_rule_saved_unchanged_keeps_its_version() -> None:
    rule = _stored_with_old_spelling()
    migration.forwards(apps, None)
    saved = trigger_rule_save(data=rule_data(conditions=OLD), rule=rule, via="test")
    assert saved.version == rule.version
    assert saved.versions.count() == 1
