"""Writes for triggers: saving rules (validated, versioned), evaluating contacts (snapshot,
match, record firings exactly once), running actions after commit, the evaluation queue fed
by events and segment changes, and scheduled sweeps."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from core.batching import chunks
from core.db import rows_insert_ignoring_conflicts
from core.keyset import keyset_pages
from crm.models import Contact
from segments.models import Segment
from triggers.actions import actions as action_registry
from triggers.actions.base import ActionFailure
from triggers.compiler import CompiledRuleset, CompileError, rule_needs, ruleset_compile
from triggers.conditions import conditions as condition_registry
from triggers.engine import engine
from triggers.facts import SegmentNeed
from triggers.models import TriggerFiring, TriggerPendingContact, TriggerRule, TriggerRuleVersion
from triggers.snapshots import snapshots_build
from triggers.types import Facts
from triggers.validation import FieldError, rule_validate

logger = logging.getLogger(__name__)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


# --- Rules -----------------------------------------------------------------------------------


class RuleInvalid(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


def trigger_rule_save(
    *,
    data: dict[str, Any],
    rule: TriggerRule | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    via: str = "",
) -> TriggerRule:
    """Validate `data` (a rule snapshot) and create or update the rule. A change bumps the
    version and records it in the history; saving the same content again changes nothing.
    Raises RuleInvalid with every field's problem."""
    clean, errors = rule_validate(data)
    if errors:
        raise RuleInvalid(errors)
    with transaction.atomic():
        if rule is None:
            rule = TriggerRule.objects.select_for_update().filter(slug=clean["slug"]).first()
        elif rule.pk is not None:
            rule = TriggerRule.objects.select_for_update().get(pk=rule.pk)
        if rule is None:
            rule = TriggerRule()
        before = rule.snapshot() if rule.pk else None
        audience = clean.pop("audience_segment")
        for key in ("active_from", "active_until"):
            clean[key] = dt.datetime.fromisoformat(clean[key]) if clean[key] else None
        for key, value in clean.items():
            setattr(rule, key, value)
        rule.audience_segment = Segment.objects.get(slug=audience) if audience else None
        after = rule.snapshot()
        if before == after:
            return rule
        rule.version += 1
        rule.save()
        TriggerRuleVersion.objects.create(
            rule=rule,
            version=rule.version,
            snapshot=after,
            edited_by=cast(Any, user) if (user is not None and user.is_authenticated) else None,
            edited_via=via,
        )
        # This process sees the change at once; other workers within the check interval.
        transaction.on_commit(ruleset_forget)
    return rule


# --- The current ruleset, per process ----------------------------------------------------------


@dataclass(frozen=True)
class RuleInfo:
    id: int
    slug: str
    version: int
    reentry: str
    reentry_days: int | None
    snapshot: Mapping[str, Any]  # a RuleSnapshot, or the dry run's edited copy of one


# (rules, last update, sum of versions): moves on every create, edit or delete.
RulesStamp = tuple[int, dt.datetime | None, int | None]


@dataclass
class _Current:
    stamp: RulesStamp | None = None
    checked_at: float = 0.0
    compiled: CompiledRuleset | None = None
    rules: dict[str, RuleInfo] = field(default_factory=dict)


_CURRENT = _Current()
_CURRENT_LOCK = threading.Lock()


def ruleset_forget() -> None:
    """Make the next evaluation in this process look at the stamp again."""
    with _CURRENT_LOCK:
        _CURRENT.checked_at = 0.0


def rules_stamp() -> RulesStamp:
    """Changes whenever any rule is created, edited or deleted: one cheap aggregate."""
    row = TriggerRule.objects.aggregate(n=Count("id"), last=Max("updated_at"), v=Sum("version"))
    return (row["n"], row["last"], row["v"])


def ruleset_current(*, force: bool = False) -> tuple[CompiledRuleset, dict[str, RuleInfo]]:
    """The compiled enabled rules. Workers look at the stamp at most every
    TRIGGER_RULES_CHECK_SECONDS and recompile only when it moved, so a save reaches every
    worker within seconds, without a restart."""
    interval = _setting("TRIGGER_RULES_CHECK_SECONDS", 2)
    with _CURRENT_LOCK:
        fresh = time.monotonic() - _CURRENT.checked_at < interval
        if _CURRENT.compiled is not None and fresh and not force:
            return _CURRENT.compiled, _CURRENT.rules
        stamp = rules_stamp()
        _CURRENT.checked_at = time.monotonic()
        if _CURRENT.compiled is None or stamp != _CURRENT.stamp:
            rules = list(
                TriggerRule.objects.filter(enabled=True).select_related("audience_segment")
            )
            snapshots = [rule.snapshot() for rule in rules]
            compiled = ruleset_compile(snapshots)
            engine().use(compiled)
            _CURRENT.compiled = compiled
            _CURRENT.rules = {
                rule.slug: RuleInfo(
                    id=rule.pk,
                    slug=rule.slug,
                    version=rule.version,
                    reentry=rule.reentry,
                    reentry_days=rule.reentry_days,
                    snapshot=snap.copy(),
                )
                for rule, snap in zip(rules, snapshots, strict=True)
            }
            _CURRENT.stamp = stamp
        assert _CURRENT.compiled is not None
        return _CURRENT.compiled, _CURRENT.rules


def segment_watched(*, segment_id: int) -> bool:
    """Whether an enabled rule looks at this segment (a segment condition or its audience):
    a membership change of any other segment cannot change what a rule decides, so its
    contacts need no evaluation. One query over the enabled rules; no engine."""
    slugs: set[str] = set()
    for rule in TriggerRule.objects.filter(enabled=True).select_related("audience_segment"):
        try:
            needs = rule_needs(rule.snapshot())
        except CompileError:
            return True  # cannot tell: evaluate, as before
        slugs.update(need.slug for need in needs if isinstance(need, SegmentNeed))
    return bool(slugs) and Segment.objects.filter(pk=segment_id, slug__in=slugs).exists()


# --- Evaluation ----------------------------------------------------------------------------------


@dataclass
class Match:
    rule: RuleInfo
    contact_id: int
    occurrence_key: str
    facts: Facts


@dataclass
class EvaluationResult:
    evaluated: int = 0
    matched: int = 0  # (rule, contact) pairs the engine matched
    fired: int = 0  # firings recorded by this evaluation
    firing_ids: list[int] = field(default_factory=list)


def _occurrence_keys(
    *, pairs: list[tuple[RuleInfo, Facts]], now: dt.datetime
) -> list[tuple[RuleInfo, Facts, str]]:
    """Apply re-entry in SQL (one query for the batch) and name each occurrence."""
    if not pairs:
        return []
    rule_ids = {info.id for info, _ in pairs}
    contact_ids = {int(facts["cid"]) for _, facts in pairs}
    last = {
        (row["rule_id"], row["contact_id"]): row["last"]
        for row in TriggerFiring.objects.filter(rule_id__in=rule_ids, contact_id__in=contact_ids)
        .values("rule_id", "contact_id")
        .annotate(last=Max("fired_at"))
    }
    keyed: list[tuple[RuleInfo, Facts, str]] = []
    for info, facts in pairs:
        previous = last.get((info.id, int(facts["cid"])))
        if info.reentry == TriggerRule.Reentry.ONCE_EVER:
            if previous is None:
                keyed.append((info, facts, "once"))
        elif info.reentry == TriggerRule.Reentry.ONCE_PER_DAYS:
            cooldown = dt.timedelta(days=info.reentry_days or 1)
            if previous is None or previous <= now - cooldown:
                keyed.append((info, facts, now.date().isoformat()))
        else:
            activity = facts.get("activity_ts")
            key = f"a{activity}" if activity else f"m{int(now.timestamp()) // 60}"
            keyed.append((info, facts, key))
    return keyed


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
    from triggers.compiler import needs_of

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
    size = _setting("TRIGGER_EVALUATION_BATCH_SIZE", 500)
    ids = sorted(set(contact_ids))
    try:
        for start in range(0, len(ids), size):
            batch = ids[start : start + size]
            evaluated, pairs = matches_find(contact_ids=batch, now=now, only_rules=only_rules)
            result.evaluated += evaluated
            result.matched += len(pairs)
            firing_ids = _firings_record(pairs=pairs, now=now, source=source, enqueue=False)
            result.fired += len(firing_ids)
            result.firing_ids.extend(firing_ids)
    finally:
        # One publish for the whole call rather than one per batch (a publish to the SQLite
        # broker costs as much as evaluating a few hundred contacts). In `finally`: the
        # batches that committed before an error still get their actions run.
        if result.firing_ids:
            _actions_enqueue_on_commit(list(result.firing_ids))
    return result


def _firings_record(
    *, pairs: list[tuple[RuleInfo, Facts]], now: dt.datetime, source: str, enqueue: bool = True
) -> list[int]:
    if not pairs:
        return []
    batch = uuid.uuid4()
    with transaction.atomic():
        keyed = _occurrence_keys(pairs=pairs, now=now)
        TriggerFiring.objects.bulk_create(
            [
                TriggerFiring(
                    rule_id=info.id,
                    rule_version=info.version,
                    contact_id=int(facts["cid"]),
                    occurrence_key=key,
                    fired_at=now,
                    source=source,
                    facts=facts,
                    batch=batch,
                )
                for info, facts, key in keyed
            ],
            ignore_conflicts=True,
        )
        # Rows another evaluation wrote first kept their own batch: these are ours.
        firing_ids = list(
            TriggerFiring.objects.filter(batch=batch).order_by("id").values_list("id", flat=True)
        )
        if firing_ids and enqueue:
            _actions_enqueue_on_commit(firing_ids)
    return firing_ids


ENQUEUE_CHUNK = 1000  # firing ids per task


def _actions_enqueue_on_commit(firing_ids: list[int]) -> None:
    """Publish the firings' actions once the transaction that recorded them commits."""
    from triggers.tasks import trigger_firings_run

    for chunk in chunks(firing_ids, ENQUEUE_CHUNK):
        trigger_firings_run.delay_on_commit(chunk)


# --- Actions ---------------------------------------------------------------------------------


def _actions_of(firings: Sequence[TriggerFiring]) -> dict[int, Sequence[Mapping[str, Any]]]:
    """{firing id: the actions of the rule version that fired}, in one query."""
    wanted = {(f.rule_id, f.rule_version) for f in firings}
    found: dict[tuple[int, int], Sequence[Mapping[str, Any]]] = {}
    if wanted:
        condition = Q()
        for rule_id, version in wanted:
            condition |= Q(rule_id=rule_id, version=version)
        for rule_id, version, snapshot in TriggerRuleVersion.objects.filter(condition).values_list(
            "rule_id", "version", "snapshot"
        ):
            found[(rule_id, version)] = snapshot["actions"]
    return {
        f.pk: found.get((f.rule_id, f.rule_version)) or f.rule.snapshot()["actions"]
        for f in firings
    }


def actions_database_only(entries: Iterable[Mapping[str, Any]]) -> bool:
    """True when every action only writes to the database (no network): such a rule's
    actions can run inside one transaction, and right after the evaluation that fired."""
    for entry in entries:
        handler = action_registry.get(str(entry.get("id")))
        if handler is None or not handler.database_only:
            return False
    return True


def _firing_claim(firing: TriggerFiring) -> bool:
    return bool(
        TriggerFiring.objects.filter(pk=firing.pk, status=TriggerFiring.Status.PENDING).update(
            status=TriggerFiring.Status.RUNNING
        )
    )


def firing_actions_run(
    *, firing: TriggerFiring, entries: Sequence[Mapping[str, Any]] | None = None
) -> TriggerFiring:
    """Claim a pending firing (one conditional UPDATE: only one worker wins), run its
    rule's actions in order, record each outcome; the first error stops the rest and is
    recorded on the firing (and logged). `entries`: the actions, when the caller already
    read them with the firing."""
    if entries is not None and actions_database_only(entries):
        # Claim, the actions' rows (a delivery, an attribute) and the firing's outcome
        # commit together: one write transaction instead of three, and no moment at which
        # the work is done but the firing says otherwise. What the actions enqueue goes
        # after the commit. A second claimer waits for it, then finds nothing pending.
        with transaction.atomic():
            if not _firing_claim(firing):
                return firing
            # Loaded just before; nothing but the status moves on a pending firing.
            firing.status = TriggerFiring.Status.RUNNING
            return _firing_actions_do(firing=firing, entries=entries, savepoints=True)
    if not _firing_claim(firing):
        return firing
    firing.refresh_from_db()
    if entries is None:
        entries = _actions_of([firing])[firing.pk]
    return _firing_actions_do(firing=firing, entries=entries, savepoints=False)


def _firing_actions_do(
    *, firing: TriggerFiring, entries: Sequence[Mapping[str, Any]], savepoints: bool
) -> TriggerFiring:
    outcomes: list[Mapping[str, object]] = []
    error = ""
    for index, entry in enumerate(entries):
        handler = action_registry.get(str(entry.get("id")))
        try:
            if handler is None:
                raise ValueError(f"unknown action type {entry.get('id')!r}")
            # Inside the firing's transaction, a savepoint: a failed action's writes go,
            # the outcome of those before it stays (a network action is never inside one).
            with transaction.atomic() if savepoints else contextlib.nullcontext():
                outcome = handler.run_entry(entry, firing=firing, contact_id=firing.contact_id)
        except Exception as exc:
            logger.exception(
                "trigger %s firing %s: action %s failed", firing.rule_id, firing.pk, index
            )
            error = f"actions[{index}] ({entry.get('id')}): {exc.__class__.__name__}: {exc}"
            outcomes.append(
                ActionFailure(
                    id=entry.get("id"), error=str(exc), traceback=traceback.format_exc(limit=5)
                )
            )
            break
        outcomes.append({"id": entry.get("id"), **outcome})
    firing.status = TriggerFiring.Status.FAILED if error else TriggerFiring.Status.DONE
    firing.error = error
    firing.outcome = {"actions": outcomes}
    firing.finished_at = timezone.now()
    firing.save(update_fields=["status", "error", "outcome", "finished_at"])
    return firing


def firings_run(*, firing_ids: Iterable[int], database_only: bool = False) -> list[TriggerFiring]:
    """Run the actions of the pending firings among `firing_ids` (those another worker
    claimed first are left to it). `database_only`: only the firings whose actions are all
    database work (the evaluation task runs those at once; the rest wait for their task)."""
    firings = list(TriggerFiring.objects.filter(pk__in=list(firing_ids)).select_related("rule"))
    entries = _actions_of([f for f in firings if f.status == TriggerFiring.Status.PENDING])
    ran: list[TriggerFiring] = []
    for firing in firings:
        actions = entries.get(firing.pk)
        if actions is None:  # no longer pending: as it is
            ran.append(firing)
        elif not database_only or actions_database_only(actions):
            ran.append(firing_actions_run(firing=firing, entries=actions))
    return ran


def firing_retry(*, firing: TriggerFiring) -> TriggerFiring:
    """Admin: run a failed firing's actions again (a send is still once per firing)."""
    TriggerFiring.objects.filter(pk=firing.pk, status=TriggerFiring.Status.FAILED).update(
        status=TriggerFiring.Status.PENDING, error=""
    )
    firing.refresh_from_db()
    return firing_actions_run(firing=firing)


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
    limit = limit or _setting("TRIGGER_EVALUATION_BATCH_SIZE", 500)
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


# --- Sweeps ------------------------------------------------------------------------------------


def rule_candidates(*, snapshot: Mapping[str, Any], rule_id: int | None, now: dt.datetime) -> Q:
    """A Contact filter that every contact who can fire the rule now satisfies."""
    filters: list[Q | None] = []
    for entry in snapshot["conditions"]:
        handler = condition_registry.get(str(entry["id"]))
        options = {key: value for key, value in entry.items() if key != "id"}
        filters.append(handler.candidates(options, now=now) if handler else None)
    narrowing = Q()
    if snapshot.get("match_mode") == TriggerRule.MatchMode.ANY:
        if filters and all(f is not None for f in filters):
            for item in filters:
                narrowing |= item  # type: ignore[operator]
    else:
        for item in filters:
            if item is not None:
                narrowing &= item
    narrowing &= Q(is_erased=False)
    if snapshot.get("audience_segment"):
        from segments.models import SegmentMembership

        narrowing &= Q(
            id__in=SegmentMembership.objects.filter(
                segment__slug=snapshot["audience_segment"], exited_at__isnull=True
            ).values("contact_id")
        )
    if rule_id is not None:
        fired = TriggerFiring.objects.filter(rule_id=rule_id)
        if snapshot.get("reentry") == TriggerRule.Reentry.ONCE_EVER:
            narrowing &= ~Q(id__in=fired.values("contact_id"))
        elif snapshot.get("reentry") == TriggerRule.Reentry.ONCE_PER_DAYS:
            recent = fired.filter(
                fired_at__gt=now - dt.timedelta(days=snapshot.get("reentry_days") or 1)
            )
            narrowing &= ~Q(id__in=recent.values("contact_id"))
    return narrowing


def _active(snapshot: Mapping[str, Any], now: dt.datetime) -> bool:
    start, end = snapshot.get("active_from"), snapshot.get("active_until")
    if start and dt.datetime.fromisoformat(start) > now:
        return False
    return not (end and dt.datetime.fromisoformat(end) <= now)


def candidate_batches(*, narrowing: Q, size: int) -> Iterable[list[int]]:
    """Keyset pagination by id over the contacts that pass the filter."""
    return keyset_pages(
        Contact.objects.filter(narrowing).values_list("id", flat=True), size=size, field="id"
    )


SweepProgress = Callable[[str, int, int], None]  # rule slug, contacts checked, fired


def triggers_sweep(
    *,
    now: dt.datetime | None = None,
    slugs: set[str] | None = None,
    progress: SweepProgress | None = None,
) -> dict[str, EvaluationResult]:
    """For rules whose answer moves with the clock (dormancy, windows, local time...):
    check the contacts that can match now, pre-filtered in SQL."""
    now = now or timezone.now()
    compiled, rules = ruleset_current(force=True)
    size = _setting("TRIGGER_EVALUATION_BATCH_SIZE", 500)
    results: dict[str, EvaluationResult] = {}
    for slug in compiled.rule_slugs:
        info = rules[slug]
        if slugs is not None and slug not in slugs:
            continue
        clock = any(
            getattr(condition_registry.get(str(e["id"])), "time_dependent", False)
            for e in info.snapshot["conditions"]
        )
        if (slugs is None and not clock) or not _active(info.snapshot, now):
            continue
        result = results.setdefault(slug, EvaluationResult())
        narrowing = rule_candidates(snapshot=info.snapshot, rule_id=info.id, now=now)
        for batch in candidate_batches(narrowing=narrowing, size=size):
            evaluated, pairs = matches_find(
                contact_ids=batch, now=now, only_rules={slug}, compiled=compiled, rules=rules
            )
            firing_ids = _firings_record(pairs=pairs, now=now, source="sweep")
            result.evaluated += evaluated
            result.matched += len(pairs)
            result.fired += len(firing_ids)
            result.firing_ids.extend(firing_ids)
            if progress:
                progress(slug, result.evaluated, result.fired)
    return results
