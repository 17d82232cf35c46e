"""RFM scores and named groups on fixture purchases."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import Contact, Event
from segments.analytics.rfm import rfm_compute, rfm_group_for
from segments.models import ContactRFM, RFMGroup, Segment, SegmentMembership
from tests.factories import ContactFactory, EventFactory

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def _buyer(*, orders: int, last_days_ago: int, order_value: str) -> Contact:
    contact: Contact = ContactFactory.create()
    for n in range(orders):
        EventFactory(
            contact=contact,
            type=Event.ORDER_COMPLETED,
            value=Decimal(order_value),
            currency="EUR",
            occurred_at=NOW - dt.timedelta(days=last_days_ago + 3 * n),
        )
    return contact


def _ladder() -> list[Contact]:
    """Ten buyers, each better than the previous on all three measures."""
    return [_buyer(orders=i + 1, last_days_ago=50 - 5 * i, order_value="10.00") for i in range(10)]


@pytest.mark.django_db
def test_scores_are_quintiles_from_worst_to_best() -> None:
    buyers = _ladder()

    rfm_compute(period_days=365, now=NOW)

    scores = [
        ContactRFM.objects.values_list("recency_score", "frequency_score", "monetary_score").get(
            contact=c
        )
        for c in buyers
    ]
    assert scores == [(s, s, s) for s in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)]


@pytest.mark.django_db
def test_best_buyers_are_champions_and_worst_are_lost() -> None:
    buyers = _ladder()

    rfm_compute(period_days=365, now=NOW)

    assert ContactRFM.objects.get(contact=buyers[-1]).group == RFMGroup.CHAMPIONS
    assert ContactRFM.objects.get(contact=buyers[0]).group == RFMGroup.LOST


@pytest.mark.django_db
def test_stores_raw_measures_period_and_date() -> None:
    contact = _buyer(orders=3, last_days_ago=4, order_value="19.90")

    rfm_compute(period_days=90, now=NOW)

    row = ContactRFM.objects.get(contact=contact)
    assert (row.recency_days, row.frequency, row.monetary) == (4, 3, Decimal("59.70"))
    assert (row.period_days, row.computed_at) == (90, NOW)


@pytest.mark.django_db
def test_identical_histories_get_identical_scores() -> None:
    twins = [_buyer(orders=1, last_days_ago=10, order_value="5.00") for _ in range(6)]
    _ladder()

    rfm_compute(period_days=365, now=NOW)

    rows = ContactRFM.objects.filter(contact__in=twins)
    assert len({(r.recency_score, r.frequency_score, r.monetary_score) for r in rows}) == 1


@pytest.mark.django_db
def test_contact_without_purchase_in_period_is_not_scored() -> None:
    old_buyer = _buyer(orders=2, last_days_ago=400, order_value="50.00")
    viewer = ContactFactory.create()
    EventFactory(contact=viewer, type=Event.PRODUCT_VIEWED, occurred_at=NOW - dt.timedelta(days=1))
    _ladder()

    rfm_compute(period_days=365, now=NOW)

    assert not ContactRFM.objects.filter(contact__in=[old_buyer, viewer]).exists()
    assert ContactRFM.objects.count() == 10


@pytest.mark.django_db
def test_rescoring_removes_contacts_whose_purchases_left_the_period() -> None:
    contact = _buyer(orders=1, last_days_ago=20, order_value="10.00")
    rfm_compute(period_days=30, now=NOW)
    assert ContactRFM.objects.filter(contact=contact).exists()

    result = rfm_compute(period_days=30, now=NOW + dt.timedelta(days=15))

    assert not ContactRFM.objects.filter(contact=contact).exists()
    assert (result.scored, result.removed) == (0, 1)


@pytest.mark.django_db
def test_erased_contacts_are_not_scored() -> None:
    contact = _buyer(orders=2, last_days_ago=3, order_value="10.00")
    Contact.objects.filter(pk=contact.pk).update(is_erased=True, erased_at=timezone.now())

    rfm_compute(period_days=365, now=NOW)

    assert not ContactRFM.objects.exists()


@pytest.mark.django_db
def test_distribution_counts_every_group_and_score() -> None:
    _ladder()

    result = rfm_compute(period_days=365, now=NOW)

    assert sum(result.by_group.values()) == 10
    assert result.by_score["R"] == {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}


@pytest.mark.parametrize(
    ("r", "f", "m", "group"),
    [
        (5, 5, 5, RFMGroup.CHAMPIONS),
        (5, 1, 1, RFMGroup.NEW_CUSTOMERS),
        (4, 1, 1, RFMGroup.PROMISING),
        (4, 2, 3, RFMGroup.POTENTIAL_LOYALIST),
        (3, 5, 4, RFMGroup.LOYAL),
        (3, 3, 3, RFMGroup.NEED_ATTENTION),
        (3, 1, 2, RFMGroup.ABOUT_TO_SLEEP),
        (2, 4, 3, RFMGroup.AT_RISK),
        (1, 5, 5, RFMGroup.CANT_LOSE_THEM),
        (2, 1, 2, RFMGroup.HIBERNATING),
        (1, 1, 1, RFMGroup.LOST),
    ],
)
def test_named_group_follows_the_documented_grid(r: int, f: int, m: int, group: str) -> None:
    assert rfm_group_for(recency=r, frequency=f, monetary=m) == group


def test_every_score_combination_has_a_group() -> None:
    groups = {
        rfm_group_for(recency=r, frequency=f, monetary=m)
        for r in range(1, 6)
        for f in range(1, 6)
        for m in range(1, 6)
    }
    assert groups == set(RFMGroup)


@pytest.mark.django_db
def test_rfm_command_prints_the_distribution_per_group_and_score() -> None:
    _ladder()
    out = io.StringIO()

    call_command("segments", "rfm", "--period-days", "365", stdout=out)

    text = out.getvalue()
    assert "RFM over the last 365 days" in text and "10 buyers scored" in text
    assert "Can't lose them" in text
    assert "R recency" in text and "F frequency" in text and "M monetary" in text


@pytest.mark.django_db
def test_rfm_command_refreshes_segments_with_rfm_conditions() -> None:
    buyers = _ladder()
    segment = Segment.objects.create(
        name="Champions",
        slug="champions",
        definition={"op": "and", "conditions": [{"type": "rfm", "group": "champions"}]},
    )

    call_command("segments", "rfm", stdout=io.StringIO())

    members = set(
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list(
            "contact_id", flat=True
        )
    )
    champions = ContactRFM.objects.filter(group=RFMGroup.CHAMPIONS).values_list("contact_id")
    assert members == {pk for (pk,) in champions} and members <= {c.pk for c in buyers}
    assert members


@pytest.mark.django_db
def test_rfm_command_rejects_a_period_below_one_day() -> None:
    with pytest.raises(CommandError, match="--period-days must be at least 1, got 0"):
        call_command("segments", "rfm", "--period-days", "0")


def _buyer_at(*, orders: int, last: dt.datetime, order_value: str) -> Contact:
    contact: Contact = ContactFactory.create()
    for n in range(orders):
        EventFactory(
            contact=contact,
            type=Event.ORDER_COMPLETED,
            value=Decimal(order_value),
            currency="EUR",
            occurred_at=last - dt.timedelta(days=3 * n),
        )
    return contact


@pytest.mark.django_db
def test_buyers_of_the_same_day_share_the_top_recency_score_and_champions_is_not_empty() -> None:
    # 17 bought today, at different hours; 3 bought earlier. Recency counts whole days.
    today = [
        _buyer_at(
            orders=1 + i % 4,
            last=NOW - dt.timedelta(minutes=7 * i),
            order_value=str(10 * (1 + i % 4)),
        )
        for i in range(17)
    ]
    older = [_buyer(orders=1, last_days_ago=d, order_value="5.00") for d in (20, 40, 60)]

    result = rfm_compute(period_days=365, now=NOW)

    today_r = set(
        ContactRFM.objects.filter(contact__in=today).values_list("recency_score", flat=True)
    )
    assert today_r == {5}
    older_r = ContactRFM.objects.filter(contact__in=older).values_list("recency_score", flat=True)
    assert max(older_r) < 5
    assert result.by_group.get(RFMGroup.CHAMPIONS, 0) > 0
    assert ContactRFM.objects.filter(group=RFMGroup.CHAMPIONS).exists()


@pytest.mark.django_db
def test_three_distinct_values_give_three_distinct_scores_and_equal_values_equal_scores() -> None:
    low = [_buyer(orders=1, last_days_ago=30, order_value="10.00") for _ in range(4)]
    mid = [_buyer(orders=2, last_days_ago=20, order_value="20.00") for _ in range(3)]
    high = [_buyer(orders=3, last_days_ago=10, order_value="30.00") for _ in range(2)]

    rfm_compute(period_days=365, now=NOW)

    def scores(contacts: list[Contact]) -> set[tuple[int, int, int]]:
        return set(
            ContactRFM.objects.filter(contact__in=contacts).values_list(
                "recency_score", "frequency_score", "monetary_score"
            )
        )

    assert (scores(low), scores(mid), scores(high)) == ({(1, 1, 1)}, {(3, 3, 3)}, {(5, 5, 5)})


@pytest.mark.django_db
def test_one_time_buyers_keep_the_lowest_frequency_score_however_many_they_are() -> None:
    one_timers = [_buyer(orders=1, last_days_ago=5 + i, order_value="10.00") for i in range(8)]
    repeat = _buyer(orders=4, last_days_ago=5, order_value="10.00")

    rfm_compute(period_days=365, now=NOW)

    assert set(
        ContactRFM.objects.filter(contact__in=one_timers).values_list("frequency_score", flat=True)
    ) == {1}
    assert ContactRFM.objects.get(contact=repeat).frequency_score == 5


@pytest.mark.django_db
def test_when_every_buyer_is_tied_all_get_the_middle_score() -> None:
    buyers = [_buyer(orders=1, last_days_ago=3, order_value="10.00") for _ in range(3)]

    rfm_compute(period_days=365, now=NOW)

    assert set(
        ContactRFM.objects.filter(contact__in=buyers).values_list(
            "recency_score", "frequency_score", "monetary_score"
        )
    ) == {(3, 3, 3)}
