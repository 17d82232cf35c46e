"""What the database guarantees: one active enrollment per key, versions never change,
and the migrations match the models."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db.models import RestrictedError

from journeys.models import Enrollment, Journey, JourneyVersion, StepRun, VersionImmutable
from journeys.services import journey_save
from tests.factories import ContactFactory
from tests.journeys.helpers import example, make_example_campaigns

pytestmark = pytest.mark.django_db


@pytest.fixture
def version() -> JourneyVersion:
    make_example_campaigns()
    published = journey_save(example(), via="test").published
    assert published is not None
    return published


def _enrol(version: JourneyVersion, contact_id: int, key: str = "") -> Enrollment:
    return Enrollment.objects.create(
        journey=version.journey, version=version, contact_id=contact_id, entry_key=key
    )


def test_a_second_active_enrollment_with_the_same_key_is_refused(version: JourneyVersion) -> None:
    contact = ContactFactory.create()
    _enrol(version, contact.pk, "cart-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        _enrol(version, contact.pk, "cart-1")


def test_one_active_enrollment_per_key_is_allowed(version: JourneyVersion) -> None:
    contact = ContactFactory.create()
    _enrol(version, contact.pk, "cart-1")
    _enrol(version, contact.pk, "cart-2")
    assert Enrollment.objects.filter(contact=contact, status="active").count() == 2


def test_a_contact_may_enter_again_after_completing(version: JourneyVersion) -> None:
    contact = ContactFactory.create()
    first = _enrol(version, contact.pk)
    Enrollment.objects.filter(pk=first.pk).update(status=Enrollment.Status.COMPLETED)
    _enrol(version, contact.pk)
    assert Enrollment.objects.filter(contact=contact).count() == 2


def test_a_step_runs_once_per_sequence(version: JourneyVersion) -> None:
    enrollment = _enrol(version, ContactFactory.create().pk)
    StepRun.objects.create(enrollment=enrollment, step_id="cool-off", sequence=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        StepRun.objects.create(enrollment=enrollment, step_id="cool-off", sequence=1)


def test_a_published_version_refuses_an_update(version: JourneyVersion) -> None:
    version.steps = []
    with pytest.raises(VersionImmutable):
        version.save()
    version.refresh_from_db()
    assert version.steps[0]["id"] == "cool-off"


def test_deleting_a_journey_takes_its_versions_and_enrollments(version: JourneyVersion) -> None:
    _enrol(version, ContactFactory.create().pk)
    version.journey.delete()
    assert not Journey.objects.exists()
    assert not JourneyVersion.objects.exists()
    assert not Enrollment.objects.exists()


def test_a_version_contacts_are_on_cannot_be_deleted_alone(version: JourneyVersion) -> None:
    _enrol(version, ContactFactory.create().pk)
    with pytest.raises(RestrictedError), transaction.atomic():
        version.delete()


def test_the_migrations_match_the_models() -> None:
    call_command("makemigrations", "journeys", "--check", "--dry-run", stdout=StringIO())


def test_every_field_tells_marketers_what_it_holds_with_an_example() -> None:
    from django.apps import apps

    missing = [
        f"{model.__name__}.{field.name}"
        for model in apps.get_app_config("journeys").get_models()
        for field in model._meta.concrete_fields
        if not field.primary_key and "e.g." not in str(field.help_text)
    ]
    assert missing == []
