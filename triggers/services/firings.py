"""Firings: recorded exactly once per (rule, contact, occurrence) with re-entry applied in
SQL, then their rules' actions run, each firing claimed by one worker."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from core.batching import chunks
from triggers.actions import actions as action_registry
from triggers.actions.base import ActionFailure
from triggers.models import TriggerFiring, TriggerRule, TriggerRuleVersion
from triggers.services.rules import RuleInfo
from triggers.types import Facts, FiringOutcome

logger = logging.getLogger(__name__)


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


def firings_record(
    *, pairs: list[tuple[RuleInfo, Facts]], now: dt.datetime, source: str, enqueue: bool = True
) -> list[int]:
    """Record matched (rule, facts) pairs as firings, re-entry applied, in one transaction;
    returns the ids of the firings this call wrote (a row another evaluation wrote first is
    not ours). `enqueue`: publish their actions after commit (a caller that records several
    batches publishes once, itself)."""
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
            actions_enqueue_on_commit(firing_ids)
    return firing_ids


ENQUEUE_CHUNK = 1000  # firing ids per task


def actions_enqueue_on_commit(firing_ids: list[int]) -> None:
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
    firing.outcome = FiringOutcome(actions=outcomes)
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
