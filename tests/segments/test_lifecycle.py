"""Lifecycle stages from activity (events), with every change recorded."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from crm.models import Contact
from crm.services.contact_input import ContactInput
from crm.services.contacts import contacts_upsert
from crm.services.event_input import event_input_parse
from crm.services.events import events_ingest
from crm.services.merge import contact_merge
from segments.analytics.lifecycle import lifecycle_refresh
from segments.analytics.rfm import rfm_compute
from segments.analytics.tasks import analytics_refresh_daily
from segments.models import (
    ContactLifecycle,
    ContactRFM,
    LifecycleChange,
    LifecycleStage,
    Segment,
    SegmentMembership,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _contact(*, created_days_ago: int) -> Contact:
    contact: Contact = ContactFactory.create()
    Contact.objects.filter(pk=contact.pk).update(
        created_at=timezone.now() - dt.timedelta(days=created_days_ago)
    )
    return contact


def _event(contact: Contact, *, days_ago: float, type: str = "page_viewed") -> None:
    """Activity goes through crm's ingestion, which keeps last_activity_at."""
    occurred = timezone.now() - dt.timedelta(days=days_ago)
    parsed, errors = event_input_parse(
        {"type": type, "occurred_at": occurred.isoformat(), "contact": {"email": contact.email}}
    )
    assert parsed is not None, errors
    events_ingest([parsed], source="test")


def _stage(contact: Contact) -> str:
    return ContactLifecycle.objects.get(contact=contact).stage


def _refresh(**kwargs: Any) -> None:
    lifecycle_refresh(**kwargs)


def test_recently_created_contact_is_new() -> None:
    contact = _contact(created_days_ago=3)

    _refresh()

    assert _stage(contact) == LifecycleStage.NEW


def test_contact_with_recent_activity_is_active() -> None:
    contact = _contact(created_days_ago=200)
    _event(contact, days_ago=5)

    _refresh()

    assert _stage(contact) == LifecycleStage.ACTIVE


def test_no_activity_for_sixty_days_is_dormant() -> None:
    contact = _contact(created_days_ago=300)
    _event(contact, days_ago=61)

    _refresh()

    assert _stage(contact) == LifecycleStage.DORMANT


def test_no_activity_past_churn_threshold_is_churned() -> None:
    contact = _contact(created_days_ago=400)
    _event(contact, days_ago=181)

    _refresh()

    assert _stage(contact) == LifecycleStage.CHURNED


def test_editing_a_dormant_contact_does_not_make_it_active() -> None:
    contact = _contact(created_days_ago=300)
    _event(contact, days_ago=90)
    _refresh()

    contacts_upsert([ContactInput(email=contact.email, first_name="Renamed")], source="admin")
    _refresh()

    contact.refresh_from_db()
    assert contact.first_name == "Renamed"
    assert _stage(contact) == LifecycleStage.DORMANT


def test_contact_never_active_is_not_active_after_the_new_window() -> None:
    contact = _contact(created_days_ago=45)
    contacts_upsert([ContactInput(email=contact.email, last_name="Edited")], source="admin")

    _refresh()

    assert _stage(contact) == LifecycleStage.DORMANT


def test_dormant_contact_that_comes_back_is_reactivated_and_the_change_recorded() -> None:
    contact = _contact(created_days_ago=300)
    _event(contact, days_ago=90)
    _refresh()

    _event(contact, days_ago=0.1, type="product_viewed")
    _refresh()

    assert _stage(contact) == LifecycleStage.REACTIVATED
    history = list(
        LifecycleChange.objects.filter(contact=contact)
        .order_by("id")
        .values_list("from_stage", "to_stage")
    )
    assert history == [("", "dormant"), ("dormant", "reactivated")]


def test_reactivated_becomes_active_after_the_new_window() -> None:
    contact = _contact(created_days_ago=300)
    _event(contact, days_ago=90)
    _refresh()
    _event(contact, days_ago=0.1)
    _refresh()

    _refresh(now=timezone.now() + dt.timedelta(days=31))

    assert _stage(contact) == LifecycleStage.ACTIVE


def test_active_contact_goes_dormant_when_the_clock_moves_on() -> None:
    contact = _contact(created_days_ago=300)
    _event(contact, days_ago=10)
    _refresh()

    _refresh(now=timezone.now() + dt.timedelta(days=55))

    assert _stage(contact) == LifecycleStage.DORMANT
    assert LifecycleChange.objects.filter(
        contact=contact, from_stage="active", to_stage="dormant"
    ).exists()


def test_unchanged_stage_records_no_change() -> None:
    contact = _contact(created_days_ago=300)
    _event(contact, days_ago=10)
    _refresh()

    result = lifecycle_refresh()

    assert result.changed == 0
    assert LifecycleChange.objects.filter(contact=contact).count() == 1


def test_thresholds_come_from_settings(settings: Any) -> None:
    settings.LIFECYCLE_DORMANT_DAYS = 7
    settings.LIFECYCLE_CHURNED_DAYS = 14
    contact = _contact(created_days_ago=300)
    _event(contact, days_ago=10)

    _refresh()

    assert _stage(contact) == LifecycleStage.DORMANT


def test_stages_are_counted_for_the_distribution() -> None:
    _contact(created_days_ago=1)
    active = _contact(created_days_ago=200)
    _event(active, days_ago=2)

    result = lifecycle_refresh()

    assert result.by_stage == {
        "new": 1,
        "active": 1,
        "dormant": 0,
        "churned": 0,
        "reactivated": 0,
    }


def test_lifecycle_command_prints_changes_and_stage_counts() -> None:
    _contact(created_days_ago=2)
    dormant = _contact(created_days_ago=300)
    _event(dormant, days_ago=100)
    out = io.StringIO()

    call_command("segments", "lifecycle", stdout=out)

    text = out.getvalue()
    assert "2 contacts changed stage." in text
    assert "(none) -> dormant: 1" in text and "(none) -> new: 1" in text
    assert "dormant after 60" in text


def test_daily_analytics_task_stores_stages_scores_and_refreshes_segments() -> None:
    buyer = _contact(created_days_ago=300)
    _event(buyer, days_ago=3, type="order_completed")
    segment = Segment.objects.create(
        name="Active",
        slug="active",
        definition={"op": "and", "conditions": [{"type": "lifecycle", "stages": ["active"]}]},
    )

    done = analytics_refresh_daily()

    assert done == {"lifecycle": 1, "rfm": 1, "predictions": 0, "segments": 1}
    assert _stage(buyer) == LifecycleStage.ACTIVE
    assert ContactRFM.objects.filter(contact=buyer).exists()
    assert SegmentMembership.objects.filter(segment=segment, contact=buyer).exists()


def test_merging_two_contacts_with_analytics_keeps_the_survivors_rows() -> None:
    survivor = _contact(created_days_ago=300)
    duplicate = _contact(created_days_ago=300)
    _event(survivor, days_ago=2, type="order_completed")
    _event(duplicate, days_ago=100, type="order_completed")
    _refresh()
    rfm_compute(period_days=365)

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="test")

    assert _stage(survivor) == LifecycleStage.ACTIVE
    assert not ContactLifecycle.objects.filter(contact_id=duplicate.pk).exists()
    assert list(ContactRFM.objects.values_list("contact_id", flat=True)) == [survivor.pk]
    # The history of both moves to the survivor.
    assert LifecycleChange.objects.filter(contact=survivor).count() == 2


def test_contact_dormant_for_ninety_days_who_buys_is_reactivated() -> None:
    # Imported recently, with its history: the last visit 90 days before today's purchase.
    contact = _contact(created_days_ago=3)
    _event(contact, days_ago=200)
    _event(contact, days_ago=90)
    _event(contact, days_ago=0.1, type="order_completed")

    _refresh()

    assert _stage(contact) == LifecycleStage.REACTIVATED


def test_recently_imported_dormant_contact_who_comes_back_is_reactivated_not_new() -> None:
    contact = _contact(created_days_ago=10)
    _event(contact, days_ago=120)
    _refresh()
    assert _stage(contact) == LifecycleStage.DORMANT

    _event(contact, days_ago=0.1, type="order_completed")
    _refresh()

    assert _stage(contact) == LifecycleStage.REACTIVATED


def test_contact_imported_with_two_years_of_history_and_a_recent_event_is_active_not_new() -> None:
    contact = _contact(created_days_ago=1)
    for days_ago in range(730, 0, -30):
        _event(contact, days_ago=days_ago)

    _refresh()

    assert _stage(contact) == LifecycleStage.ACTIVE


def test_contact_first_active_recently_is_new() -> None:
    contact = _contact(created_days_ago=5)
    _event(contact, days_ago=4)
    _event(contact, days_ago=1, type="order_completed")

    _refresh()

    assert _stage(contact) == LifecycleStage.NEW


def test_comeback_after_a_gap_stays_reactivated_for_the_new_window_then_becomes_active() -> None:
    contact = _contact(created_days_ago=400)
    _event(contact, days_ago=300)
    _event(contact, days_ago=20)
    _event(contact, days_ago=2)

    _refresh()
    assert _stage(contact) == LifecycleStage.REACTIVATED

    _refresh(now=timezone.now() + dt.timedelta(days=11))
    assert _stage(contact) == LifecycleStage.ACTIVE


def test_gaps_shorter_than_the_dormant_threshold_are_not_a_comeback() -> None:
    contact = _contact(created_days_ago=400)
    for days_ago in (150, 100, 50, 2):
        _event(contact, days_ago=days_ago)

    _refresh()

    assert _stage(contact) == LifecycleStage.ACTIVE
