"""factory_boy factories shared by every app's tests."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from crm.models import ConsentRecord, Contact, Event


class ContactFactory(factory.django.DjangoModelFactory[Contact]):
    class Meta:
        model = Contact

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    timezone = "Europe/Paris"
    country = "FR"


class EventFactory(factory.django.DjangoModelFactory[Event]):
    class Meta:
        model = Event

    contact = factory.SubFactory(ContactFactory)
    type = Event.PRODUCT_VIEWED
    occurred_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=5))
    properties = factory.LazyFunction(lambda: {"product_id": "SKU-1", "product_name": "Blue mug"})


class ConsentFactory(factory.django.DjangoModelFactory[ConsentRecord]):
    class Meta:
        model = ConsentRecord

    contact = factory.SubFactory(ContactFactory)
    channel = "email"
    purpose = "marketing"
    status = ConsentRecord.Status.GRANTED
    source = ConsentRecord.Source.FORM
    text = "Send me offers by email."
    text_version = "test-1"
