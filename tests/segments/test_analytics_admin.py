"""Marketers read RFM, lifecycle, clusters and predictions in admin, and cannot edit them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from segments.models import ClusteringRun, ContactRFM
from tests.factories import ContactFactory


@pytest.fixture
def marketer_client() -> Client:
    user = User.objects.create_user("mia", "mia@example.com", "pw-123456789", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_marketer_reads_rfm_scores_but_cannot_change_them(marketer_client: Client) -> None:
    contact = ContactFactory.create(first_name="Ada", last_name="Lovelace")
    rfm = ContactRFM.objects.create(
        contact=contact,
        recency_score=5,
        frequency_score=4,
        monetary_score=5,
        group="champions",
        recency_days=2,
        frequency=9,
        monetary=Decimal("812.50"),
        period_days=365,
        computed_at=timezone.now(),
    )
    page = marketer_client.get("/admin/segments/contactrfm/")
    assert page.status_code == 200
    assert "Ada Lovelace" in page.content.decode() and "Champions" in page.content.decode()
    change = marketer_client.post(f"/admin/segments/contactrfm/{rfm.pk}/change/", {"group": "lost"})
    assert change.status_code == 403
    rfm.refresh_from_db()
    assert rfm.group == "champions"


@pytest.mark.django_db
def test_cluster_descriptions_are_shown_escaped(admin_client: Client) -> None:
    run = ClusteringRun.objects.create(
        k=2,
        features=["recency"],
        silhouette=0.4,
        seed=42,
        period_days=365,
        contacts=10,
        descriptions=[
            {"cluster": 0, "label": "<script>x</script>", "description": "buy often", "size": 6}
        ],
        created_at=timezone.now() - dt.timedelta(minutes=1),
    )
    body = admin_client.get(f"/admin/segments/clusteringrun/{run.pk}/change/").content.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in body and "<script>x</script>" not in body
    assert "buy often" in body
