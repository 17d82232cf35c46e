"""`python manage.py segments refresh|list`, and the schedule that refreshes segments."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from config.periodic import PERIODIC_TASKS
from segments.models import Segment, SegmentMembership
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

FRANCE = {"op": "and", "conditions": [{"type": "country", "operator": "in", "countries": ["FR"]}]}


def run(*args: str) -> str:
    out = StringIO()
    call_command("segments", *args, stdout=out)
    return out.getvalue()


def test_refresh_all_fills_every_active_segment_and_shows_progress(settings: object) -> None:
    settings.SEGMENT_REFRESH_BATCH_SIZE = 2  # type: ignore[attr-defined]
    for _ in range(3):
        ContactFactory.create(country="FR")
    ContactFactory.create(country="DE")
    Segment.objects.create(name="France", slug="france", definition=FRANCE)
    output = run("refresh", "--all")
    assert "france: 2/4 contacts (50%), +2 entered, -0 left" in output
    assert "france: 4/4 contacts (100%), +3 entered, -0 left" in output
    assert "france: 3 members (3 entered, 0 left)" in output
    assert SegmentMembership.objects.filter(segment__slug="france", exited_at=None).count() == 3


def test_refresh_by_slug_refreshes_only_that_segment() -> None:
    ContactFactory.create(country="FR")
    Segment.objects.create(name="France", slug="france", definition=FRANCE)
    Segment.objects.create(
        name="Germany", slug="germany", definition={"op": "and", "conditions": []}
    )
    output = run("refresh", "france")
    assert "france: 1 members" in output
    assert "germany" not in output


def test_refresh_of_an_unknown_slug_is_an_error() -> None:
    with pytest.raises(CommandError, match="no segment with slug 'nope'"):
        run("refresh", "nope")


def test_refresh_needs_slugs_or_all() -> None:
    with pytest.raises(CommandError, match="name segments by slug, or give --all"):
        run("refresh")


def test_list_prints_name_size_and_warnings() -> None:
    ContactFactory.create(country="FR")
    Segment.objects.create(name="France", slug="france", definition=FRANCE, min_size=100)
    run("refresh", "--all")
    output = run("list")
    assert "France [france]: 1 members, refreshed" in output
    assert "warning: too small to act on: 1 members, below the minimum of 100" in output


def test_a_subcommand_is_required() -> None:
    with pytest.raises(CommandError, match="choose a subcommand"):
        run()


def test_beat_refreshes_clock_dependent_segments_every_15_minutes() -> None:
    specs = {spec["task"]: spec for spec in PERIODIC_TASKS}
    assert specs["segments.tasks.segments_refresh_clock_dependent"]["every_seconds"] == 900
    assert specs["segments.tasks.segments_refresh_all"]["crontab"] == "41 3 * * *"
