"""K-means clusters: reproducible with a seed, described in words, saved as segments."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from crm.models import Contact, Event
from segments.analytics.clustering import ClusteringError, clustering_run
from segments.compiler import segment_queryset
from segments.models import ContactCluster, Segment
from tests.factories import ContactFactory

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


def _group(
    size: int, *, kind: str, count: int, days_ago: int, value: str | None = None
) -> list[Contact]:
    contacts = ContactFactory.create_batch(size)
    Event.objects.bulk_create(
        Event(
            contact=contact,
            type=kind,
            value=Decimal(value) if value else None,
            occurred_at=NOW - dt.timedelta(days=days_ago + n * 2, hours=i % 7),
        )
        for i, contact in enumerate(contacts)
        for n in range(count)
    )
    return contacts


@pytest.fixture
def groups() -> dict[str, list[Contact]]:
    return {
        "buyers": _group(25, kind=Event.ORDER_COMPLETED, count=8, days_ago=1, value="80.00"),
        "readers": _group(25, kind=Event.PAGE_VIEWED, count=2, days_ago=150),
        "browsers": _group(25, kind=Event.PRODUCT_VIEWED, count=12, days_ago=2),
    }


def _assignments(run_id: int) -> dict[int, int]:
    return dict(ContactCluster.objects.filter(run_id=run_id).values_list("contact_id", "cluster"))


def test_each_behaviour_group_lands_in_its_own_cluster(groups: dict[str, list[Contact]]) -> None:
    result = clustering_run(k=3, seed=7, now=NOW)

    clusters = _assignments(result.run.pk)
    found = {name: {clusters[c.pk] for c in members} for name, members in groups.items()}
    assert all(len(ids) == 1 for ids in found.values())
    assert len(set().union(*found.values())) == 3


def test_same_seed_gives_the_same_clusters(groups: dict[str, list[Contact]]) -> None:
    first = clustering_run(k=3, seed=11, now=NOW)
    second = clustering_run(k=3, seed=11, now=NOW)

    assert _assignments(first.run.pk) == _assignments(second.run.pk)
    assert first.run.descriptions == [
        {**entry, "segment_slug": entry["segment_slug"]} for entry in second.run.descriptions
    ]


def test_k_is_chosen_by_silhouette_in_the_range(groups: dict[str, list[Contact]]) -> None:
    result = clustering_run(k_range=(2, 6), seed=3, now=NOW)

    assert result.run.k == 3
    assert set(result.scores) == {2, 3, 4, 5, 6}
    assert result.run.silhouette == max(result.scores.values())


def test_buyers_cluster_is_described_in_plain_words(groups: dict[str, list[Contact]]) -> None:
    result = clustering_run(k=3, seed=7, now=NOW)

    buyer_cluster = _assignments(result.run.pk)[groups["buyers"][0].pk]
    entry = result.run.descriptions[buyer_cluster]
    assert "times as often as average" in entry["description"]
    assert "spend" in entry["description"]
    assert "mostly active in the last" in entry["description"]
    assert entry["size"] == 25


def test_inactive_readers_are_described_as_last_seen_long_ago(
    groups: dict[str, list[Contact]],
) -> None:
    result = clustering_run(k=3, seed=7, now=NOW)

    cluster = _assignments(result.run.pk)[groups["readers"][0].pk]
    description = result.run.descriptions[cluster]["description"]
    assert "have not bought in the period" in description
    assert "typically last seen 15" in description  # 150 days ago, the latest of 2 views


def test_each_cluster_is_saved_as_a_segment_of_its_members(
    groups: dict[str, list[Contact]],
) -> None:
    result = clustering_run(k=3, seed=7, now=NOW)

    buyer_cluster = _assignments(result.run.pk)[groups["buyers"][0].pk]
    segment = Segment.objects.get(slug=f"kmeans-cluster-{buyer_cluster}")
    assert segment.definition["conditions"][0] == {"type": "cluster", "cluster": buyer_cluster}
    assert set(segment_queryset(segment).values_list("pk", flat=True)) == {
        c.pk for c in groups["buyers"]
    }
    assert Segment.objects.filter(slug__startswith="kmeans-cluster-", is_active=True).count() == 3


def test_segments_of_clusters_a_new_run_lacks_are_deactivated(
    groups: dict[str, list[Contact]],
) -> None:
    clustering_run(k=3, seed=7, now=NOW)

    clustering_run(k=2, seed=7, now=NOW)

    assert not Segment.objects.get(slug="kmeans-cluster-2").is_active


def test_too_few_contacts_for_k_is_a_clear_error() -> None:
    _group(3, kind=Event.PAGE_VIEWED, count=1, days_ago=1)

    with pytest.raises(ClusteringError, match="3 contacts with events"):
        clustering_run(k=4, seed=1, now=NOW)


def test_cluster_command_prints_each_cluster_with_its_description(
    groups: dict[str, list[Contact]],
) -> None:
    out = io.StringIO()

    call_command("segments", "cluster", "--k-range", "2-4", "--seed", "3", stdout=out)

    text = out.getvalue()
    assert "3 clusters of 75 contacts" in text
    assert "Frequent buyers, big spenders, recently active" in text
    assert "buy 3.0 times as often as average" in text
    assert "segment kmeans-cluster-0" in text


def test_cluster_command_rejects_a_malformed_range() -> None:
    with pytest.raises(CommandError, match="'2to8' is not a range like 2-8"):
        call_command("segments", "cluster", "--k-range", "2to8")
