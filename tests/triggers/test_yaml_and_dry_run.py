"""Rules round-trip through YAML; import is all or nothing; dry runs write nothing."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import Contact
from tests.factories import ContactFactory, EventFactory
from tests.triggers.helpers import make_rule
from triggers.models import TriggerFiring, TriggerRule, TriggerRuleVersion

pytestmark = pytest.mark.django_db
DEMO_RULES = Path(__file__).resolve().parents[2] / "devtools" / "demo_data" / "rules.yaml"


def test_export_then_import_round_trips_every_rule(tmp_path: Path) -> None:
    make_rule()
    make_rule(
        "win-back",
        conditions=[{"id": "dormancy", "days": 60}],
        reentry_days=60,
        match_mode="any",
        priority=4,
    )
    before = {r.slug: r.snapshot() for r in TriggerRule.objects.all()}
    target = tmp_path / "rules.yaml"
    call_command("triggers", "export", "--output", str(target), stdout=StringIO())
    TriggerRule.objects.all().delete()
    out = StringIO()
    call_command("triggers", "import", str(target), stdout=out)
    assert "created 2" in out.getvalue()
    assert {r.slug: r.snapshot() for r in TriggerRule.objects.all()} == before


def test_importing_the_same_file_again_changes_nothing(tmp_path: Path) -> None:
    make_rule()
    target = tmp_path / "rules.yaml"
    call_command("triggers", "export", "-o", str(target), stdout=StringIO())
    out = StringIO()
    call_command("triggers", "import", str(target), stdout=out)
    assert "unchanged 1" in out.getvalue()
    assert TriggerRuleVersion.objects.count() == 1


def test_an_invalid_rule_stops_the_whole_import_and_names_the_field(tmp_path: Path) -> None:
    target = tmp_path / "rules.yaml"
    target.write_text(
        "rules:\n"
        "- {name: Ok, slug: ok, conditions: [{id: dormancy, days: 5}],"
        " actions: [{id: set_attribute, attribute: a, value: b}], reentry: once_ever}\n"
        "- {name: Bad, slug: bad, conditions: [{id: dormancy, days: 0}],"
        " actions: [{id: set_attribute, attribute: a, value: b}], reentry: once_ever}\n"
    )
    err = StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("triggers", "import", str(target), stdout=StringIO(), stderr=err)
    assert "rules[1] (bad): conditions[0].days:" in err.getvalue()
    assert not TriggerRule.objects.exists()


def test_the_demo_rules_validate_once_their_campaigns_exist() -> None:
    from campaigns.models import Campaign

    for slug, channel in (
        ("browse-abandonment", "email"),
        ("win-back-sms", "sms"),
        ("win-back-email", "email"),
    ):
        Campaign.objects.create(name=slug, slug=slug, channel=channel, kind="triggered")
    call_command("triggers", "import", str(DEMO_RULES), stdout=StringIO())
    assert set(TriggerRule.objects.filter(enabled=True).values_list("slug", flat=True)) == {
        "browse-abandonment",
        "win-back",
    }


def test_dry_run_reports_who_would_fire_and_writes_nothing() -> None:
    make_rule()
    contact = ContactFactory.create()
    for hours in (1, 2, 3):
        EventFactory.create(
            contact=contact,
            type="product_viewed",
            occurred_at=timezone.now() - dt.timedelta(hours=hours),
        )
    old = ContactFactory.create()
    for days in (3, 3, 3):
        EventFactory.create(
            contact=old,
            type="product_viewed",
            occurred_at=timezone.now() - dt.timedelta(days=days, hours=1),
        )
    attributes_before = list(Contact.objects.values_list("attributes", flat=True))
    out = StringIO()
    call_command("triggers", "dry-run", "browse-abandonment", stdout=out)
    text = out.getvalue()
    assert "1 contact(s) would fire now" in text
    assert f"contact {contact.pk}" in text
    three_days_ago = (timezone.now() - dt.timedelta(days=3)).date().isoformat()
    assert any(
        line.strip().startswith(three_days_ago) and line.split()[1] == "1"
        for line in text.splitlines()
        if line.startswith("  20")
    )
    assert not TriggerFiring.objects.exists()
    assert list(Contact.objects.values_list("attributes", flat=True)) == attributes_before
