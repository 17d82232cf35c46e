"""Journey measurements: enrollment steps advanced per second through the engine's whole path
(claim, branch evaluation, send queued, ledger) beside one SQL UPDATE moving the same rows,
and the time to find the due enrollments among 1,000,000 waiting ones.

Enrollments go in set-based (INSERT ... SELECT over the contacts, crossed with a generated
series of keys for the million), never row by row from Python."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, Delivery, MessageTemplate, Variant
from devtools.bench.data import Scale
from devtools.bench.results import Progress, Result, stopwatch
from devtools.demo_catalogue import DEMO_TEMPLATES
from journeys.engine.due import BATCH as DUE_BATCH
from journeys.models import Enrollment, Journey, StepRun
from journeys.services import journey_save

MILLION = 1_000_000
# The example of docs/journeys.md, as marketers write it.
BROWSE_FOLLOW_UP: dict[str, Any] = {
    "slug": "browse-follow-up",
    "name": "Browse follow-up",
    "enabled": True,
    "reentry": {"mode": "once_per_days", "days": 7},
    "goal": {"event": "order_completed", "within_days": 7},
    "steps": [
        {"id": "cool-off", "type": "wait", "minutes": 240},
        {
            "id": "bought",
            "type": "branch",
            "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 24}],
            "then": [
                {"id": "email-1", "type": "send", "campaign": "browse-abandonment"},
                {"id": "wait-day", "type": "wait", "days": 1},
                {
                    "id": "sms-1",
                    "type": "send",
                    "campaign": "win-back-sms",
                    "fallback_campaign": "win-back-email",
                },
            ],
            "else": [{"id": "done", "type": "exit"}],
        },
    ],
}
BRANCH_STEP = "bought"
# Of the million waiting, one in DUE_EVERY is due now: a few thousand, as after a busy hour.
DUE_EVERY = 250


def advance_count(scale: Scale) -> int:
    """Enrollments positioned at the branch: every contact of the small scale, a capped
    share of the larger ones (the rate, not the size, is the figure)."""
    return min(scale.contacts, 50_000)


def _campaigns() -> None:
    """The triggered campaigns the journey sends (the demo shop's templates)."""
    for slug, channel in (
        ("browse-abandonment", "email"),
        ("win-back-sms", "sms"),
        ("win-back-email", "email"),
    ):
        spec = DEMO_TEMPLATES[slug]
        template, _ = MessageTemplate.objects.get_or_create(name=spec["name"], defaults=spec)
        campaign, created = Campaign.objects.get_or_create(
            slug=slug,
            defaults={
                "name": spec["name"],
                "channel": channel,
                "kind": Campaign.Kind.TRIGGERED,
                "status": Campaign.Status.SENDING,
            },
        )
        if created:
            Variant.objects.create(campaign=campaign, name="A", template=template)


def journey_create(data: dict[str, Any] | None = None) -> Journey:
    _campaigns()
    return journey_save(dict(data or BROWSE_FOLLOW_UP), via="bench").journey


def _dt(moment: dt.datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


INSERT_COLUMNS = (
    "journey_id, version_id, contact_id, entry_key, status, step_id, sequence, due_at, "
    "entered_at, step_started_at, exit_reason, awaiting_event, entry_properties"
)


def enrollments_at_branch(*, journey: Journey, count: int, now: dt.datetime) -> int:
    """`count` contacts enrolled four hours ago, their cool-off over: at the branch step,
    due now. One INSERT ... SELECT."""
    assert journey.current_version is not None
    entered = now - dt.timedelta(minutes=240)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO journeys_enrollment ({INSERT_COLUMNS}) "  # noqa: S608 (constants only)
            "SELECT %s, %s, id, '', 'active', %s, 1, %s, %s, %s, '', '', '{}' "
            "FROM (SELECT id FROM crm_contact ORDER BY id LIMIT %s) AS picked",
            [
                journey.pk,
                journey.current_version.pk,
                BRANCH_STEP,
                _dt(now),
                _dt(entered),
                _dt(now),
                count,
            ],
        )
        return int(cursor.rowcount)


def enrollments_reposition(*, journey: Journey, now: dt.datetime) -> int:
    """Back at the branch, due now (after the UPDATE baseline moved them)."""
    return Enrollment.objects.filter(journey=journey).update(
        step_id=BRANCH_STEP, sequence=1, due_at=now, step_started_at=now, status="active"
    )


def update_baseline(*, journey: Journey, now: dt.datetime) -> tuple[int, float]:
    """The same rows moved on by one hand-written UPDATE: (rows, seconds)."""
    with stopwatch() as took, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE journeys_enrollment SET step_id = %s, sequence = sequence + 1, "
            "due_at = %s, step_started_at = %s, awaiting_event = '' "
            "WHERE journey_id = %s AND status = 'active' AND due_at <= %s",
            ["email-1", _dt(now), _dt(now), journey.pk, _dt(now)],
        )
        moved = int(cursor.rowcount)
    return moved, took[0]


def _keys_sql(keys: int) -> str:
    """A relation `keys(n)` of 1..keys, as each database writes a series."""
    if connection.vendor == "postgresql":
        return f"SELECT generate_series(1, {int(keys)}) AS n"
    return (
        "WITH RECURSIVE series(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM series "  # noqa: S608
        f"WHERE n < {int(keys)}) SELECT n FROM series"
    )


def _future_sql() -> str:
    """A due time spread over the next 24 hours by row, from a parameter `now`."""
    if connection.vendor == "postgresql":
        return "%s::timestamptz + ((c.id + k.n) %% 1440 + 1) * interval '1 minute'"
    # Django's SQLite text format, so comparisons with its parameters order correctly.
    return (
        "strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, '+' || ((c.id + k.n) %% 1440 + 1) || ' minutes')"
    )


def enrollments_waiting(*, journey: Journey, total: int, now: dt.datetime) -> int:
    """`total` enrollments waiting at the cool-off (contacts crossed with entry keys, as a
    once-per-key journey holds them): all but one in DUE_EVERY due within the next day,
    those due a minute ago. One INSERT ... SELECT."""
    assert journey.current_version is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM crm_contact")
        contacts = int(cursor.fetchone()[0])
    keys = -(-total // max(contacts, 1))
    past = now - dt.timedelta(minutes=1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO journeys_enrollment ({INSERT_COLUMNS}) "  # noqa: S608 (constants only)
            "SELECT %s, %s, c.id, 'k' || k.n, 'active', 'cool-off', 0, "
            f"CASE WHEN (c.id + k.n) %% {DUE_EVERY} = 0 THEN %s ELSE {_future_sql()} END, "
            "%s, %s, '', '', '{}' "
            f"FROM crm_contact AS c CROSS JOIN ({_keys_sql(keys)}) AS k LIMIT %s",
            [
                journey.pk,
                journey.current_version.pk,
                _dt(past),
                _dt(now),
                _dt(past),
                _dt(past),
                total,
            ],
        )
        inserted = int(cursor.rowcount)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE journeys_enrollment")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE journeys_enrollment")
    return inserted


DUE_QUERY = (
    "SELECT id FROM journeys_enrollment WHERE status = 'active' AND due_at IS NOT NULL "
    "AND due_at <= %s ORDER BY due_at"
)


def due_query(now: dt.datetime) -> tuple[int, float, str]:
    """The due rows found by one SELECT on the partial index: (rows, seconds, plan)."""
    explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(explain + DUE_QUERY, [_dt(now)])
        plan = " | ".join(" ".join(str(part) for part in row) for row in cursor.fetchall())
    runs = []
    found = 0
    for _ in range(3):
        with stopwatch() as took, connection.cursor() as cursor:
            cursor.execute(DUE_QUERY, [_dt(now)])
            found = len(cursor.fetchall())
        runs.append(took[0])
    return found, min(runs), plan


def ledger_count(journey: Journey) -> int:
    return StepRun.objects.filter(enrollment__journey=journey).count()


def _full_scan(now: dt.datetime) -> tuple[int, float]:
    """The due query with the indexes turned off: every row read (rows, seconds)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute("SET LOCAL enable_indexonlyscan = off")
            sql = DUE_QUERY
        else:
            sql = DUE_QUERY.replace("journeys_enrollment", "journeys_enrollment NOT INDEXED")
        with stopwatch() as took:
            cursor.execute(sql, [_dt(now)])
            rows = len(cursor.fetchall())
    return rows, took[0]


def measure_due_lookup(*, scale: Scale, progress: Progress) -> Result:
    """Due rows found among a million waiting enrollments, by the claim's query on the
    partial index (goal < 1 s), beside a full scan of the table."""
    waiting = journey_create({**BROWSE_FOLLOW_UP, "slug": "bench-waiting", "name": "Waiting"})
    progress.say(f"journey_due_lookup: inserting {MILLION:,} waiting enrollments (one INSERT)")
    with stopwatch() as inserting:
        inserted = enrollments_waiting(journey=waiting, total=MILLION, now=timezone.now())
    progress.say(f"  {inserted:,} enrollments in {inserting[0]:.1f}s")
    now = timezone.now()
    found, seconds, plan = due_query(now)
    scanned, scan_seconds = _full_scan(now)
    # What one beat tick does with them: claim a batch (the UPDATE under a lease).
    from journeys.engine import enrollments_claim

    with stopwatch() as claiming:
        claimed = len(enrollments_claim(now=now, limit=DUE_BATCH))
    return Result(
        name="journey_due_lookup",
        value=seconds,
        unit="s to find the due among 1M waiting",
        baseline="the same query with indexes off (full scan)",
        baseline_value=scan_seconds,
        goal="< 1 s",
        met=seconds < 1.0,
        detail={
            "waiting": inserted,
            "due": found,
            "full_scan_rows": scanned,
            "insert_s": round(inserting[0], 1),
            "claim_batch_s": round(claiming[0], 4),
            "claimed": claimed,
            "plan": plan,
            "uses_due_index": "journeys_enrol_due_idx" in plan,
        },
    )


# The beat task's batch.
ADVANCE_BATCH = DUE_BATCH


def _advance_all(progress: Progress, total: int) -> tuple[int, int, float, float]:
    """Claim and advance what is due, batch after batch, as the beat task and its workers
    do (here in one process): (enrollments, ledger steps finished, seconds, CPU seconds of
    this process, which on SQLite includes the database's work)."""
    from journeys.engine import claim_lease, enrollments_advance, enrollments_claim

    enrollments = steps = 0
    # Due when the run began: a send step holds its contact and looks again 30 s later,
    # which is the next pass's work, not this one's.
    start = timezone.now()
    cpu = time.process_time()
    with stopwatch() as took:
        while True:
            now = timezone.now()
            lease = claim_lease(now)
            ids = enrollments_claim(now=start, limit=ADVANCE_BATCH, lease=lease)
            if not ids:
                break
            report = enrollments_advance(ids, lease=lease, now=now)
            enrollments += len(ids)
            steps += report.steps
            progress.count("enrollments advanced", min(enrollments, total), total)
    return enrollments, steps, took[0], time.process_time() - cpu


def measure_advance(*, scale: Scale, progress: Progress) -> Result:
    """Enrollments at the branch of browse-follow-up, due now: the branch decided by the
    rules engine, the email's delivery queued (the send step then holds until dispatch has
    sent it), each step in the ledger. Beside: one UPDATE moving the same rows one step."""
    journey = journey_create()
    n = advance_count(scale)
    now = timezone.now()
    enrollments_at_branch(journey=journey, count=n, now=now)
    progress.say(
        f"journey_advance: {n:,} enrollments at the branch of browse-follow-up, claimed and "
        f"advanced in batches of {ADVANCE_BATCH:,} (branch, send queued, ledger)"
    )
    moved, update_seconds = update_baseline(journey=journey, now=now)
    enrollments_reposition(journey=journey, now=timezone.now())
    before = ledger_count(journey)
    advanced, finished, seconds, cpu_seconds = _advance_all(progress, n)
    ledger = ledger_count(journey) - before
    # Steps advanced: every ledger row written (a send held for its delivery counts: its
    # delivery is queued and the contact has moved onto the step).
    rate = ledger / seconds
    baseline_rate = moved / update_seconds
    ratio = rate / baseline_rate
    paths = Counter(
        StepRun.objects.filter(enrollment__journey=journey).values_list("step_id", flat=True)
    )
    on_postgres = connection.vendor == "postgresql"
    return Result(
        name="journey_advance",
        value=rate,
        unit="steps/s",
        baseline="one SQL UPDATE moving the same rows one step",
        baseline_value=baseline_rate,
        goal=">= 5,000 steps/s and >= 25 % of baseline (PostgreSQL)",
        met=(rate >= 5_000 and ratio >= 0.25) if on_postgres else None,
        detail={
            "enrollments": n,
            "claimed": advanced,
            "ledger_rows": ledger,
            "steps_finished": finished,
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu_seconds, 3),
            "update_rows": moved,
            "update_seconds": round(update_seconds, 4),
            "batch": ADVANCE_BATCH,
            "ledger_by_step": dict(sorted(paths.items())),
            "deliveries_queued": Delivery.objects.filter(
                occurrence__startswith="journey-", campaign__slug="browse-abandonment"
            ).count(),
            "states": dict(
                Enrollment.objects.filter(journey=journey)
                .values_list("status")
                .annotate(n=Count("id"))
                .order_by()
            ),
        },
    )
