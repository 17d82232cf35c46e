"""Saving, versioning and the YAML import/export a marketer keeps in version control."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command

from journeys.models import Journey, JourneyVersion
from journeys.services import journey_save
from journeys.yaml_io import journeys_export, journeys_import
from tests.journeys.helpers import EXAMPLE_YAML, example, make_example_campaigns

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _campaigns() -> None:
    make_example_campaigns()


def _import_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "journeys.yaml"
    path.write_text(text, encoding="utf-8")
    out = StringIO()
    call_command("journeys", "import", str(path), stdout=out, stderr=StringIO())
    return out.getvalue()


def test_importing_the_example_creates_version_1(tmp_path: Path) -> None:
    output = _import_file(tmp_path, EXAMPLE_YAML)
    journey = Journey.objects.get(slug="browse-follow-up")
    assert "created browse-follow-up" in output
    assert journey.current_version is not None
    assert journey.current_version.number == 1
    assert [step["id"] for step in journey.current_version.steps] == ["cool-off", "bought"]
    assert journey.reentry_days == 7
    assert journey.goal_event == "order_completed"


def test_importing_the_same_file_twice_changes_nothing(tmp_path: Path) -> None:
    _import_file(tmp_path, EXAMPLE_YAML)
    before = Journey.objects.get().updated_at
    output = _import_file(tmp_path, EXAMPLE_YAML)
    assert "nothing changed" in output
    assert JourneyVersion.objects.count() == 1
    assert Journey.objects.get().updated_at == before


def test_a_structural_edit_publishes_version_2_and_keeps_version_1() -> None:
    journey_save(example(), via="test")
    edited = example()
    edited["steps"][0]["minutes"] = 60
    saved = journey_save(edited, via="test")
    assert saved.published is not None
    assert saved.published.number == 2
    first = JourneyVersion.objects.get(journey=saved.journey, number=1)
    assert first.steps[0] == {"id": "cool-off", "type": "wait", "minutes": 240}
    assert Journey.objects.get().current_version == saved.published


def test_renaming_a_journey_publishes_no_new_version() -> None:
    journey_save(example(), via="test")
    saved = journey_save({**example(), "name": "Browse nudge"}, via="test")
    assert saved.changed
    assert saved.published is None
    assert Journey.objects.get().name == "Browse nudge"
    assert JourneyVersion.objects.count() == 1


def test_a_file_with_one_bad_journey_changes_nothing(tmp_path: Path) -> None:
    bad = EXAMPLE_YAML.replace("browse-follow-up", "second").replace(
        "campaign: browse-abandonment", "campaign: no-such-campaign"
    )
    path = tmp_path / "journeys.yaml"
    path.write_text(EXAMPLE_YAML + "---\n" + bad, encoding="utf-8")
    errors = StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("journeys", "import", str(path), stdout=StringIO(), stderr=errors)
    assert "journey 2 (second): steps[1].then[0].campaign: no campaign" in errors.getvalue()
    assert not Journey.objects.exists()


def test_the_same_slug_twice_in_one_file_is_refused() -> None:
    report = journeys_import(text=EXAMPLE_YAML + "---\n" + EXAMPLE_YAML)
    assert any("also used by journey 1" in error for error in report.errors)
    assert not Journey.objects.exists()


def test_export_writes_the_example_exactly_as_documented() -> None:
    journeys_import(text=EXAMPLE_YAML)
    assert journeys_export() == EXAMPLE_YAML


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(item) for item in value]
    return value


def test_export_writes_keys_in_the_documented_order_whatever_the_stored_order() -> None:
    # PostgreSQL's jsonb keeps no key order; storing them reversed does the same on SQLite.
    journey_save(example(), via="test")
    JourneyVersion.objects.update(steps=_reversed(example()["steps"]))
    Journey.objects.update(goal_where=[{"value": "web", "operator": "equals", "property": "src"}])
    assert journeys_export() == EXAMPLE_YAML.replace(
        "within_days: 7}",
        "within_days: 7, where: [{property: src, operator: equals, value: web}]}",
    )


def test_export_then_import_changes_nothing() -> None:
    data = {
        **example(),
        "description": "Looked, did not buy",
        "status": "paused",
        "reentry": {"mode": "once_per_key", "key": "cart_id"},
    }
    data["steps"].append(
        {
            "id": "ab",
            "type": "split",
            "arms": [{"weight": 1, "steps": [{"id": "end", "type": "exit"}]}],
        }
    )
    journey_save(data, via="test")
    report = journeys_import(text=journeys_export())
    assert report.errors == []
    assert report.unchanged == ["browse-follow-up"]
    assert yaml.safe_load(journeys_export())["reentry"] == {
        "mode": "once_per_key",
        "key": "cart_id",
    }


def test_export_of_one_slug_to_a_file(tmp_path: Path) -> None:
    journeys_import(text=EXAMPLE_YAML)
    target = tmp_path / "out.yaml"
    call_command(
        "journeys", "export", "browse-follow-up", "--output", str(target), stdout=StringIO()
    )
    assert target.read_text(encoding="utf-8") == EXAMPLE_YAML


def test_export_of_an_unknown_slug_is_an_error() -> None:
    with pytest.raises(CommandError, match="no journey"):
        call_command("journeys", "export", "nope", stdout=StringIO())


def test_reimporting_a_file_without_a_status_keeps_a_paused_journey_paused(
    tmp_path: Path,
) -> None:
    _import_file(tmp_path, EXAMPLE_YAML)
    Journey.objects.update(status=Journey.Status.PAUSED)
    output = _import_file(tmp_path, EXAMPLE_YAML)
    assert "nothing changed" in output
    assert Journey.objects.get().status == Journey.Status.PAUSED


def test_a_status_in_the_file_is_applied(tmp_path: Path) -> None:
    _import_file(tmp_path, EXAMPLE_YAML)
    _import_file(tmp_path, EXAMPLE_YAML + "status: paused\n")
    assert Journey.objects.get().status == Journey.Status.PAUSED
