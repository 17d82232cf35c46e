"""The two choices a journey makes for a contact: which way a `branch` goes and which arm of
a `split` it takes. Reads only; the engine records what was chosen in the step ledger, the
dry run and `journeys explain` show it.

A branch's conditions are the trigger rules' conditions, matched by the rules engine on the
contact's snapshot at that moment: one engine rule per condition (as the rules' "why" view
does), so every decision carries each condition's verdict and the values it read. With
`since_entry`, every event window of the branch starts no earlier than the contact's entry
into the journey: the counts are taken in SQL per enrollment (two carts of one contact
entered at different times count differently) and put in place of the snapshot's.

A split is a pure function of (journey, step, contact): SHA-256 of the ids, as campaign
variants are assigned, so a retry, the dry run and a report agree without storing a draw."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from core.conditions import property_filters_q
from crm.models import Event
from triggers.compiler import explain_compile
from triggers.conditions import conditions as condition_registry
from triggers.engine import engine
from triggers.facts import (
    AttributeNeed,
    BaseNeed,
    ConsentNeed,
    EventCountNeed,
    Need,
    SegmentNeed,
    need_keys,
)
from triggers.snapshots import snapshots_build
from triggers.types import Facts

Step = Mapping[str, Any]
HOLDOUT = "holdout"
_ABSENT = object()  # a fact the snapshot leaves out (unknown), told apart from every value
_SCALE = float(2**64)


@dataclass(frozen=True)
class Entrant:
    """An enrollment at a branch: whose snapshot, and since when "since entry" counts."""

    enrollment_id: int
    contact_id: int
    entered_at: dt.datetime


@dataclass(frozen=True)
class Verdict:
    path: str  # "conditions[0]"
    description: str  # "no order_completed in 24 hours"
    holds: bool
    values: dict[str, Any]  # what the condition read, by a readable name


@dataclass(frozen=True)
class BranchDecision:
    key: str  # "then" or "else"
    verdicts: tuple[Verdict, ...]

    def as_outcome(self) -> dict[str, Any]:
        """The decision as the step ledger stores it (StepRun.outcome)."""
        return {
            "branch": self.key,
            "conditions": [
                {
                    "path": v.path,
                    "description": v.description,
                    "holds": v.holds,
                    "values": v.values,
                }
                for v in self.verdicts
            ],
        }


def need_label(need: Need, *, since_entry: bool = False) -> dict[str, str]:
    """Readable names for the snapshot keys a need fills (the keys themselves are digests)."""
    if isinstance(need, EventCountNeed):
        since = " since entry" if since_entry else ""
        where = f" ({len(need.where)} filter(s))" if need.where else ""
        return {need.key: f"{need.event} events in the last {need.hours} h{since}{where}"}
    if isinstance(need, SegmentNeed):
        return {
            need.member_key: f"member of segment {need.slug}",
            need.entered_key: f"hours since entering segment {need.slug}",
            need.exited_key: f"hours since leaving segment {need.slug}",
        }
    if isinstance(need, ConsentNeed):
        return {need.key: f"{need.channel} consent for {need.purpose}"}
    if isinstance(need, AttributeNeed):
        return {need.key: f"{need.name}", need.number_key: f"{need.name} (as a number)"}
    assert isinstance(need, BaseNeed)
    return {need.key: need.key.replace("_", " ")}


def _condition_parts(entry: Mapping[str, Any]) -> tuple[str, list[Need]]:
    handler = condition_registry.get(str(entry.get("id")))
    if handler is None:  # validated when published; a removed type reads as never holding
        return str(entry.get("id")), []
    options = handler.options_of(entry)
    return handler.describe(dict(options)), list(handler.facts_needed(options))


def _since_entry_counts(
    needs: Sequence[EventCountNeed], entrants: Sequence[Entrant], now: dt.datetime
) -> dict[int, dict[str, int]]:
    """{enrollment id: {need key: count}}: events of each need from max(window start,
    entered_at) to now, one statement per need whatever the number of enrollments."""
    from journeys.models import Enrollment

    ids = [entrant.enrollment_id for entrant in entrants]
    # An entrant without an enrollment row (the dry run's, entering now) has had no
    # events since its entry.
    zero = {need.key: 0 for need in needs}
    out: dict[int, dict[str, int]] = {entrant.enrollment_id: dict(zero) for entrant in entrants}
    for need in needs:
        start = Greatest(F("entered_at"), Value(need.window.start(now)))
        events = (
            Event.objects.filter(
                contact_id=OuterRef("contact_id"),
                type=need.event,
                occurred_at__gte=OuterRef("since"),
                occurred_at__lte=now,
            )
            .filter(property_filters_q("properties", need.where, absent_not_equal=False))
            .order_by()
            .values("contact_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        rows = (
            Enrollment.objects.filter(pk__in=ids)
            .annotate(since=start)
            .annotate(n=Coalesce(Subquery(events, output_field=IntegerField()), 0))
            .values_list("pk", "n")
        )
        for pk, count in rows:
            out[pk][need.key] = int(count)
    return out


def branch_decide(
    step: Step, entrants: Sequence[Entrant], *, now: dt.datetime
) -> dict[int, BranchDecision]:
    """{enrollment id: decision} for the enrollments at one branch step. An enrollment whose
    contact is gone or erased has no snapshot and no entry in the result."""
    entries = list(step.get("conditions") or [])
    since_entry = bool(step.get("since_entry"))
    compiled = explain_compile({"slug": f"journey-branch-{step['id']}", "conditions": entries})
    snapshots = snapshots_build(
        contact_ids=sorted({e.contact_id for e in entrants}), needs=compiled.needs, now=now
    )
    by_contact = {int(facts["cid"]): facts for facts in snapshots}
    parts = [_condition_parts(entry) for entry in entries]
    event_needs = sorted(
        {n for _, needs in parts for n in needs if isinstance(n, EventCountNeed)},
        key=lambda n: n.key,
    )
    present = [e for e in entrants if e.contact_id in by_contact]
    overrides = _since_entry_counts(event_needs, present, now) if since_entry else {}
    # The engine sees each distinct combination of the values the conditions read once: a
    # batch of shoppers mostly share them (no order, 3 views), and the answer is a function
    # of those values alone. Since-entry counts differ between a contact's enrollments, so
    # the combination is taken per enrollment.
    read = sorted({key for _, needs in parts for need in needs for key in need_keys(need)})
    signature_of: dict[int, tuple[Any, ...]] = {}
    representatives: dict[tuple[Any, ...], Facts] = {}
    for entrant in present:
        facts = {**by_contact[entrant.contact_id], **overrides.get(entrant.enrollment_id, {})}
        signature = tuple(facts.get(key, _ABSENT) for key in read)
        signature_of[entrant.enrollment_id] = signature
        if signature not in representatives:
            representatives[signature] = {**facts, "cid": len(representatives)}
    matched = engine().match(representatives.values(), compiled=compiled)
    labels: dict[str, str] = {}
    for _, needs in parts:
        for need in needs:
            labels.update(need_label(need, since_entry=since_entry))
    any_mode = step.get("match") == "any"
    by_signature: dict[tuple[Any, ...], BranchDecision] = {}
    for signature, facts in representatives.items():
        held = set(matched.get(int(facts["cid"]), []))
        verdicts = []
        for index, (description, needs) in enumerate(parts):
            values = {
                labels.get(key, key): facts.get(key, "(none)")
                for need in needs
                for key in need_keys(need)
            }
            path = f"conditions[{index}]"
            verdicts.append(Verdict(path, description, path in held, values))
        results = [v.holds for v in verdicts]
        goes = any(results) if any_mode else all(results)
        by_signature[signature] = BranchDecision("then" if goes else "else", tuple(verdicts))
    return {pk: by_signature[signature] for pk, signature in signature_of.items()}


def _uniform(journey_id: int, step_id: str, contact_id: int, label: str) -> float:
    digest = hashlib.sha256(f"journey:{label}:{journey_id}:{step_id}:{contact_id}".encode())
    return int.from_bytes(digest.digest()[:8], "big") / _SCALE


def split_decide(step: Step, *, journey_id: int, contact_id: int) -> str:
    """The list a contact takes at a split: "arms[i]" by weight, or HOLDOUT (skips every
    arm and carries on after the split). The same for the same contact, every time."""
    holdout = int(step.get("holdout") or 0)
    step_id = str(step["id"])
    if holdout and _uniform(journey_id, step_id, contact_id, "holdout") < holdout / 100:
        return HOLDOUT
    arms = list(step.get("arms") or [])
    total = sum(int(arm.get("weight") or 0) for arm in arms)
    point = _uniform(journey_id, step_id, contact_id, "arm") * total
    running = 0
    for index, arm in enumerate(arms):
        running += int(arm.get("weight") or 0)
        if point < running:
            return f"arms[{index}]"
    return f"arms[{len(arms) - 1}]"
