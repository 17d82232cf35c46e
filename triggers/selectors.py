"""Reads for triggers: firings over time, "why did or didn't this contact fire", and the dry
run / backtest. Nothing here writes (the engine's matching leaves no state behind)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from triggers.compiler import explain_compile, ruleset_compile
from triggers.conditions import conditions as condition_registry
from triggers.engine import engine
from triggers.facts import BaseNeed, need_keys
from triggers.models import TriggerFiring, TriggerRule
from triggers.snapshots import snapshots_build


def rule_firings_per_day(*, rule: TriggerRule, days: int = 30) -> list[tuple[dt.date, int]]:
    """Firings per UTC day for the last `days` days, zero days included."""
    today = timezone.now().date()
    start = today - dt.timedelta(days=days - 1)
    counts = {
        row["day"]: row["n"]
        for row in TriggerFiring.objects.filter(rule=rule, fired_at__date__gte=start)
        .annotate(day=TruncDate("fired_at"))
        .values("day")
        .annotate(n=Count("id"))
    }
    return [
        (start + dt.timedelta(days=i), counts.get(start + dt.timedelta(days=i), 0))
        for i in range(days)
    ]


def rule_recent_firings(*, rule: TriggerRule, limit: int = 20) -> QuerySet[TriggerFiring]:
    return (
        TriggerFiring.objects.filter(rule=rule)
        .select_related("contact")
        .order_by("-fired_at", "-id")[:limit]
    )


@dataclass
class ConditionVerdict:
    path: str  # "conditions[0]", "audience_segment", ...
    description: str
    holds: bool
    values: dict[str, Any]  # the contact's facts this condition reads


@dataclass
class Explanation:
    contact_id: int
    matches: bool
    verdicts: list[ConditionVerdict] = field(default_factory=list)
    reentry: str = ""
    found: bool = True


def rule_explain(
    *, rule: TriggerRule, contact_id: int, now: dt.datetime | None = None
) -> Explanation:
    """Each condition with the contact's value and whether it holds, by the engine itself."""
    now = now or timezone.now()
    snapshot: dict[str, Any] = dict(rule.snapshot())
    compiled = explain_compile(snapshot)
    facts_list = snapshots_build(contact_ids=[contact_id], needs=compiled.needs, now=now)
    if not facts_list:
        return Explanation(contact_id=contact_id, matches=False, found=False)
    facts = facts_list[0]
    held = set(engine().match([facts], compiled=compiled).get(contact_id, []))
    verdicts: list[ConditionVerdict] = []
    for name in compiled.definition:
        if name.startswith("__"):
            continue
        if name.startswith("conditions["):
            index = int(name[len("conditions[") : -1])
            entry = snapshot["conditions"][index]
            handler = condition_registry.get(str(entry["id"]))
            options = {k: v for k, v in entry.items() if k != "id"}
            description = handler.describe(options) if handler else str(entry)
            keys = [
                k
                for need in (handler.facts_needed(options) if handler else [])
                for k in need_keys(need)
            ]
        elif name == "audience_segment":
            description = f"member of the audience segment {snapshot['audience_segment']}"
            keys = [
                k for need in compiled.needs for k in need_keys(need) if k.startswith("seg_in_")
            ]
        else:
            description = f"{name.replace('_', ' ')} {snapshot[name]}"
            keys = [BaseNeed("now_ts").key]
        values = {key: facts.get(key, "(none)") for key in keys}
        verdicts.append(
            ConditionVerdict(path=name, description=description, holds=name in held, values=values)
        )
    cond = [v.holds for v in verdicts if v.path.startswith("conditions[")]
    guards = all(v.holds for v in verdicts if not v.path.startswith("conditions["))
    matches = guards and (
        any(cond) if snapshot["match_mode"] == TriggerRule.MatchMode.ANY else all(cond)
    )
    last = (
        TriggerFiring.objects.filter(rule=rule, contact_id=contact_id).order_by("-fired_at").first()
    )
    if last is None:
        reentry = "never fired for this contact"
    else:
        reentry = (
            f"last fired {last.fired_at:%Y-%m-%d %H:%M} UTC (occurrence {last.occurrence_key})"
        )
        if rule.reentry == TriggerRule.Reentry.ONCE_EVER:
            reentry += ": once ever, so it will not fire again"
        elif rule.reentry == TriggerRule.Reentry.ONCE_PER_DAYS:
            again = last.fired_at + dt.timedelta(days=rule.reentry_days or 1)
            if again > now:
                reentry += f": cooling down until {again:%Y-%m-%d %H:%M} UTC"
    return Explanation(contact_id=contact_id, matches=matches, verdicts=verdicts, reentry=reentry)


@dataclass
class DryRun:
    would_fire_now: list[int]  # contact ids (re-entry applied)
    candidates_now: int
    per_day: list[tuple[dt.date, int]]


def rule_dry_run(
    *,
    snapshot: dict[str, Any],
    rule_id: int | None = None,
    since: dt.date | None = None,
    now: dt.datetime | None = None,
) -> DryRun:
    """Who would fire now, and how many would have fired per day since `since` (default:
    the last 30 days), without recording anything. The backtest evaluates each day at its
    end (UTC), with event windows and segment history as they were then; re-entry is
    simulated within the backtest."""
    from triggers.services.evaluation import matches_find
    from triggers.services.rules import RuleInfo
    from triggers.services.sweep import candidate_batches, rule_candidates

    now = now or timezone.now()
    rule_snapshot = {**snapshot, "enabled": True}
    compiled = ruleset_compile([rule_snapshot])
    info = RuleInfo(
        id=rule_id or 0,
        slug=str(snapshot["slug"]),
        version=0,
        reentry=str(snapshot["reentry"]),
        reentry_days=snapshot.get("reentry_days"),
        snapshot=rule_snapshot,
    )
    rules = {info.slug: info}
    matched_now: list[int] = []
    candidates = 0
    narrowing = rule_candidates(snapshot=rule_snapshot, rule_id=rule_id, now=now)
    for batch in candidate_batches(narrowing=narrowing, size=500):
        candidates += len(batch)
        _, pairs = matches_find(contact_ids=batch, now=now, compiled=compiled, rules=rules)
        matched_now.extend(int(facts["cid"]) for _, facts in pairs)

    first = since or (now.date() - dt.timedelta(days=29))
    last_fired: dict[int, dt.datetime] = {}
    per_day: list[tuple[dt.date, int]] = []
    day = first
    while day <= now.date():
        moment = min(dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC), now)
        # Historical candidates: no firing-based narrowing (re-entry is simulated below).
        narrowing = rule_candidates(
            snapshot={**rule_snapshot, "reentry": TriggerRule.Reentry.EVERY_TIME.value},
            rule_id=None,
            now=moment,
        )
        narrowing = _historical_narrowing(rule_snapshot, moment) or narrowing
        count = 0
        for batch in candidate_batches(narrowing=narrowing, size=500):
            _, pairs = matches_find(
                contact_ids=batch, now=moment, compiled=compiled, rules=rules, historical=True
            )
            for _, facts in pairs:
                cid = int(facts["cid"])
                previous = last_fired.get(cid)
                if previous is not None:
                    if info.reentry == TriggerRule.Reentry.ONCE_EVER:
                        continue
                    if (
                        info.reentry == TriggerRule.Reentry.ONCE_PER_DAYS
                        and previous > moment - dt.timedelta(days=info.reentry_days or 1)
                    ):
                        continue
                last_fired[cid] = moment
                count += 1
        per_day.append((day, count))
        day += dt.timedelta(days=1)
    return DryRun(would_fire_now=matched_now, candidates_now=candidates, per_day=per_day)


def _reads_rollups(entry: dict[str, Any]) -> bool:
    handler = condition_registry.get(str(entry["id"]))
    return handler is not None and handler.candidates_read_rollups


def _historical_narrowing(snapshot: dict[str, Any], moment: dt.datetime) -> Any:
    """Candidate filters built on current-state columns (last_activity_at...) would be
    wrong for a past moment; fall back to contacts with any event before it."""
    from django.db.models import Q

    from crm.models import Event

    if not any(_reads_rollups(entry) for entry in snapshot["conditions"]):
        return None
    return Q(
        is_erased=False, id__in=Event.objects.filter(occurred_at__lte=moment).values("contact_id")
    )
