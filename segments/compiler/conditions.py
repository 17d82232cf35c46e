"""One compiler function per condition type: a parsed condition in, a Q over Contact out.

Every function is pure (no query runs while compiling) and every Q is answered by the
database: correlated EXISTS subqueries for per-contact facts, `id IN (SELECT contact_id ...
GROUP BY ... HAVING ...)` for counted behaviour. The counted form is deliberate: PostgreSQL
turns a plain EXISTS into a semi-join, but an EXISTS with GROUP BY/HAVING would run once per
contact, while the IN form is one grouped scan of the (type, contact, occurred_at) index,
the same plan as the hand-written query the benchmarks compare against. A refresh in
batches narrows that scan to each batch's contacts (`contacts`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from core.conditions import PropertyFilter, Window, column_test, json_test, property_filters_q
from crm.models import ConsentRecord, Event
from crm.selectors import consent_status_subquery
from segments.compiler.forms import ATTRIBUTE_PREFIX
from segments.compiler.types import (
    AttributeCondition,
    BehaviourCondition,
    ClusterCondition,
    Condition,
    ConsentCondition,
    CountryCondition,
    LifecycleCondition,
    PredictionCondition,
    RecencyCondition,
    RfmCondition,
    SegmentCondition,
    TimezoneCondition,
)

NOTHING = Q(pk__in=[])


def compile_attribute(condition: AttributeCondition, *, now: dt.datetime) -> Q:
    """A contact without the value does not equal any value: "not equals x" includes it."""
    if condition.field.startswith(ATTRIBUTE_PREFIX):
        key = condition.field[len(ATTRIBUTE_PREFIX) :]
        return json_test("attributes", key, condition.test, absent_not_equal=True)
    return column_test(condition.field, condition.test)


def compile_consent(condition: ConsentCondition, *, now: dt.datetime) -> Q:
    """Current consent as crm.selectors derives it (the person's own withdrawal outranks a
    business grant); no entry means no consent."""
    latest = Coalesce(
        consent_status_subquery(channel=condition.channel, purpose=condition.purpose),
        Value(""),
    )
    granted = Q(latest.get_lookup("exact")(latest, ConsentRecord.Status.GRANTED))  # type: ignore[misc]
    return granted if condition.state == "has" else ~granted


def _events_in_window(
    *,
    event: str,
    days: int,
    now: dt.datetime,
    where: tuple[PropertyFilter, ...],
    contacts: Q | None,
) -> QuerySet[Event]:
    events = Event.objects.filter(type=event, occurred_at__gte=Window(days, "day").start(now))
    if contacts is not None:
        events = events.filter(contacts)
    if where:
        events = events.filter(property_filters_q("properties", where, absent_not_equal=True))
    return events


def compile_behaviour(
    condition: BehaviourCondition, *, now: dt.datetime, contacts: Q | None = None
) -> Q:
    """ "at most N" and "exactly 0" include contacts with no such event at all. `contacts`
    (a Q over contact_id) narrows the events read to the contacts the caller asks about:
    the grouped subquery is not correlated, so without it every batch of a refresh would
    count the events of every contact."""
    events = _events_in_window(
        event=condition.event,
        days=condition.days,
        now=now,
        where=condition.where,
        contacts=contacts,
    )
    operator, count = condition.operator, condition.count
    if operator == "none" or (operator == "exactly" and count == 0):
        return ~Q(Exists(events.filter(contact_id=OuterRef("pk"))))
    if operator == "at_least" and count == 1:
        return Q(Exists(events.filter(contact_id=OuterRef("pk"))))

    def having(**lookup: int) -> Q:
        counted = (
            events.order_by()
            .values("contact_id")
            # COUNT(*), not COUNT(id): PostgreSQL can then answer from the (type, contact,
            # occurred_at) index alone, without visiting the table.
            .annotate(times=Count("*"))
            .filter(**lookup)
            .values("contact_id")
        )
        return Q(pk__in=Subquery(counted))

    if operator == "at_least":
        return having(times__gte=count)
    if operator == "exactly":
        return having(times=count)
    # at most N: everyone but those who did it more often.
    return ~having(times__gt=count)


def compile_recency(condition: RecencyCondition, *, now: dt.datetime) -> Q:
    """Days since the contact's last activity (any event) or last purchase, from the rollups
    crm keeps on Contact. A contact who never did it has no "days since": it matches
    "more than" / "at least" only with include_never, and never "less than" / "at most"."""
    column = "last_activity_at" if condition.of == "activity" else "last_purchase_at"
    cutoff = Window(condition.days, "day").start(now)
    lookup = {
        # more than N days ago: strictly before the cutoff.
        "more_than": "lt",
        "at_least": "lte",
        "less_than": "gt",
        "at_most": "gte",
    }[condition.operator]
    match = Q(**{f"{column}__{lookup}": cutoff})
    if condition.include_never and condition.operator in ("more_than", "at_least"):
        match |= Q(**{f"{column}__isnull": True})
    return match


def compile_rfm(condition: RfmCondition, *, now: dt.datetime) -> Q:
    """Contacts without an RFM row (no purchase in the period) match nothing."""
    from segments.models.analytics import ContactRFM

    scores = ContactRFM.objects.filter(contact_id=OuterRef("pk"))
    if condition.group:
        scores = scores.filter(group=condition.group)
    else:
        lookup = {"equals": "exact", "gte": "gte", "lte": "lte"}[condition.operator or "equals"]
        scores = scores.filter(**{f"{condition.score}_score__{lookup}": condition.value})
    return Q(Exists(scores))


def compile_lifecycle(condition: LifecycleCondition, *, now: dt.datetime) -> Q:
    from segments.models.analytics import ContactLifecycle

    return Q(
        Exists(
            ContactLifecycle.objects.filter(
                contact_id=OuterRef("pk"), stage__in=list(condition.stages)
            )
        )
    )


def compile_cluster(condition: ClusterCondition, *, now: dt.datetime) -> Q:
    """Cluster numbers belong to a run; without a run id, the latest run is meant."""
    from segments.models.analytics import ClusteringRun, ContactCluster

    assignments = ContactCluster.objects.filter(
        contact_id=OuterRef("pk"), cluster=condition.cluster
    )
    if condition.run is not None:
        assignments = assignments.filter(run_id=condition.run)
    else:
        latest = ClusteringRun.objects.order_by("-created_at", "-id").values("id")[:1]
        assignments = assignments.filter(run_id=Subquery(latest))
    return Q(Exists(assignments))


def compile_prediction(condition: PredictionCondition, *, now: dt.datetime) -> Q:
    """Contacts without a prediction (never bought) match nothing."""
    from segments.models.analytics import ContactPrediction

    return Q(
        Exists(
            ContactPrediction.objects.filter(
                contact_id=OuterRef("pk"),
                **{f"{condition.metric}__{condition.operator}": condition.value},
            )
        )
    )


def compile_segment(condition: SegmentCondition, *, now: dt.datetime) -> Q:
    """Current members of the other segment as of its last refresh (refreshes run
    referenced segments first)."""
    from segments.models.definitions import SegmentMembership

    member = Q(
        Exists(
            SegmentMembership.objects.filter(
                segment__slug=condition.segment, contact_id=OuterRef("pk"), exited_at__isnull=True
            )
        )
    )
    return member if condition.member else ~member


def compile_timezone(condition: TimezoneCondition, *, now: dt.datetime) -> Q:
    match = Q(timezone__in=list(condition.zones))
    return match if condition.operator == "in" else ~match


def compile_country(condition: CountryCondition, *, now: dt.datetime) -> Q:
    match = Q(country__in=list(condition.countries))
    return match if condition.operator == "in" else ~match


COMPILERS: dict[str, Callable[..., Q]] = {
    "attribute": compile_attribute,
    "consent": compile_consent,
    "behaviour": compile_behaviour,
    "recency": compile_recency,
    "rfm": compile_rfm,
    "lifecycle": compile_lifecycle,
    "cluster": compile_cluster,
    "prediction": compile_prediction,
    "segment": compile_segment,
    "timezone": compile_timezone,
    "country": compile_country,
}


def condition_compile(condition: Condition, *, now: dt.datetime, contacts: Q | None = None) -> Q:
    """`contacts`: see compile_behaviour. The other types are correlated subqueries or
    columns of Contact, which the outer query's own filter already narrows."""
    if isinstance(condition, BehaviourCondition):
        return compile_behaviour(condition, now=now, contacts=contacts)
    return COMPILERS[condition.type](condition, now=now)
