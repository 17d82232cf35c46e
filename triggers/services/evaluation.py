"""Evaluating contacts against the enabled rules (snapshot, match, record the firings), and
the queue that events and segment changes feed, drained in batches."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.db import rows_insert_ignoring_conflicts
from triggers.compiler import CompiledRuleset, needs_of
from triggers.engine import engine
from triggers.models import TriggerPendingContact
from triggers.services.firings import actions_enqueue_on_commit, firings_record, firings_run
from triggers.services.rules import RuleInfo, ruleset_current
from triggers.snapshots import snapshots_build
from triggers.types import Facts

logger = logging.getLogger(__name__)


def evaluation_batch_size() -> int:
    """Contacts per snapshot batch (and per claim from the queue)."""
    return int(getattr(settings, "TRIGGER_EVALUATION_BATCH_SIZE", 500))


@dataclass
class EvaluationResult:
    evaluated: int = 0
    matched: int = 0  # (rule, contact) pairs the engine matched
    fired: int = 0  # firings recorded by this evaluation
    firing_ids: list[int] = field(default_factory=list)


def matches_find(
    *,
    contact_ids: Sequence[int],
    now: dt.datetime,
    only_rules: set[str] | None = None,
    historical: bool = False,
    compiled: CompiledRuleset | None = None,
    rules: dict[str, RuleInfo] | None = None,
) -> tuple[int, list[tuple[RuleInfo, Facts]]]:
    """Snapshots for the batch, matched by the engine: (snapshots built, [(rule, facts)])."""
    if compiled is None or rules is None:
        compiled, rules = ruleset_current()
    wanted = [slug for slug in compiled.rule_slugs if only_rules is None or slug in only_rules]
    if not wanted or not contact_ids:
        return 0, []
    needs = needs_of([rules[slug].snapshot for slug in wanted])
    snapshots = snapshots_build(
        contact_ids=contact_ids, needs=needs, now=now, historical=historical
    )
    matched = engine().match(snapshots, compiled=compiled)
    by_cid = {int(facts["cid"]): facts for facts in snapshots}
    pairs = [
        (rules[slug], by_cid[cid])
        for cid, slugs in matched.items()
        for slug in slugs
        if slug in wanted
    ]
    return len(snapshots), pairs


def contacts_evaluate(
    *,
    contact_ids: Sequence[int],
    source: str,
    now: dt.datetime | None = None,
    only_rules: set[str] | None = None,
) -> EvaluationResult:
    """Evaluate contacts against the enabled rules and record the firings; their actions
    are enqueued after commit. Safe to repeat: a firing is unique per (rule, contact,
    occurrence), so a replay, a retry or a second worker records nothing new."""
    now = now or timezone.now()
    result = EvaluationResult()
    size = evaluation_batch_size()
    ids = sorted(set(contact_ids))
    try:
        for start in range(0, len(ids), size):
            batch = ids[start : start + size]
            evaluated, pairs = matches_find(contact_ids=batch, now=now, only_rules=only_rules)
            result.evaluated += evaluated
            result.matched += len(pairs)
            firing_ids = firings_record(pairs=pairs, now=now, source=source, enqueue=False)
            result.fired += len(firing_ids)
            result.firing_ids.extend(firing_ids)
    finally:
        # One publish for the whole call rather than one per batch (a publish to the SQLite
        # broker costs as much as evaluating a few hundred contacts). In `finally`: the
        # batches that committed before an error still get their actions run.
        if result.firing_ids:
            actions_enqueue_on_commit(list(result.firing_ids))
    return result


# --- The evaluation queue (events, segment changes) --------------------------------------------


def contacts_queue(*, contact_ids: Iterable[int], source: str) -> bool:
    """Queue contacts for evaluation; True when a drain task should be enqueued (the queue
    was empty, or its oldest entry waited longer than a drain takes)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return False
    now = timezone.now()
    with transaction.atomic():
        oldest = (
            TriggerPendingContact.objects.order_by("queued_at")
            .values_list("queued_at", flat=True)
            .first()
        )
        stamp = connection.ops.adapt_datetimefield_value(now)
        rows_insert_ignoring_conflicts(
            TriggerPendingContact,
            ("contact_id", "source", "queued_at"),
            [(cid, source, stamp) for cid in ids],
        )
    return oldest is None or oldest < now - dt.timedelta(seconds=2)


def pending_evaluate(*, limit: int | None = None) -> EvaluationResult:
    """Drain the queue in batches: claim (delete) a batch, evaluate it; on an error the
    batch goes back to the queue so nothing is lost."""
    limit = limit or evaluation_batch_size()
    total = EvaluationResult()
    while True:
        with transaction.atomic():
            claimed = list(
                TriggerPendingContact.objects.order_by("queued_at", "contact_id").values_list(
                    "contact_id", "source"
                )[:limit]
            )
            if not claimed:
                return total
            TriggerPendingContact.objects.filter(
                contact_id__in=[cid for cid, _ in claimed]
            ).delete()
        by_source: dict[str, list[int]] = {}
        for cid, source in claimed:
            by_source.setdefault(source, []).append(cid)
        fired: list[int] = []
        try:
            for source, ids in by_source.items():
                result = contacts_evaluate(contact_ids=ids, source=source)
                total.evaluated += result.evaluated
                total.matched += result.matched
                total.fired += result.fired
                total.firing_ids.extend(result.firing_ids)
                fired.extend(result.firing_ids)
        except Exception:
            for source, ids in by_source.items():
                contacts_queue(contact_ids=ids, source=source)
            raise
        if fired and len(fired) <= RUN_AT_ONCE_LIMIT:
            transaction.on_commit(functools.partial(_firings_run_now, fired))


# A trickle of firings (events arriving one by one) runs in the evaluation task; a flood
# (a segment entered by thousands) is left to the firing tasks, spread over the workers,
# so that evaluation does not stall behind it.
RUN_AT_ONCE_LIMIT = 100


def _firings_run_now(firing_ids: list[int]) -> None:
    """Near real time: run the database-only actions (a send_campaign creates its queued
    delivery) in this task, without waiting for a second trip through the broker. The
    firings' own task was enqueued all the same: it runs whatever is left (network
    actions, or all of them if this fails), and the claim lets each firing run once."""
    try:
        firings_run(firing_ids=firing_ids, database_only=True)
    except Exception:
        logger.exception("running %d firings at once failed; their task will", len(firing_ids))
