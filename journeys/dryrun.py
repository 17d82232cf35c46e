"""The dry run: "if these contacts entered now, this many would take each path". The contacts
walk the current version together, a step at a time, with the engine's own choices
(journeys/decisions.py): a branch is decided by the rules engine on their snapshots now (in
batches, with entry at this moment), a split by the same hash the engine uses. Nothing is
written and nothing is sent.

What cannot be known now is stated, not guessed: waits are passed over (the decision after a
wait is made on today's data); a `wait_for` follows its `timed_out` list, as if the awaited
event never came; a send counts as reached, though consent, caps and quiet hours decide at
send time.

Steps are visited once each, in document order: every move in a step tree goes forward in
that order (into a nested list, to a later sibling, or out past the owner), so by the time a
step is visited every contact that can reach it is there."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Q

from crm.models import Contact
from journeys.decisions import HOLDOUT, Entrant, branch_decide, split_decide
from journeys.flow import Flow, Step
from journeys.models import Journey
from segments.models import Segment, SegmentMembership

CAP = 5_000
BATCH = 1_000
NOTES = (
    "Waits are passed over: each branch is decided on the contacts' data as it is now.",
    'A wait for an event follows its "timed out" path, as if the event never came.',
    "A send counts as reached; consent, caps and quiet hours still decide at send time.",
)


@dataclass
class Picked:
    contact_ids: list[int]
    asked: int  # contacts selected before the cap
    unknown: list[str] = field(default_factory=list)  # pasted values matching no contact


@dataclass
class DryRun:
    contacts: int
    reached: Counter[str] = field(default_factory=Counter)  # step id: contacts reaching it
    lanes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (step id, list key)
    completed: int = 0
    gone: int = 0  # contacts erased or deleted, no snapshot
    notes: tuple[str, ...] = NOTES


TOKEN = re.compile(r"[\s,;]+")


def contacts_pick(*, segment: Segment | None = None, text: str = "", cap: int = CAP) -> Picked:
    """The first `cap` contacts (by id) of a segment's current members, or of the ids and
    email addresses pasted in `text`; erased contacts are left out."""
    if segment is not None:
        members = SegmentMembership.objects.filter(
            segment=segment, exited_at__isnull=True, contact__is_erased=False
        )
        asked = members.count()
        ids = list(members.order_by("contact_id").values_list("contact_id", flat=True)[:cap])
        return Picked(ids, asked)
    tokens = [t for t in TOKEN.split(text) if t]
    numbers = {int(t) for t in tokens if t.isdigit()}
    emails = {t.lower() for t in tokens if not t.isdigit()}
    found = Contact.objects.filter(Q(pk__in=numbers) | Q(email_key__in=emails), is_erased=False)
    rows = list(found.values_list("pk", "email_key"))
    known = {str(pk) for pk, _ in rows} | {str(email) for _, email in rows if email}
    unknown = [t for t in tokens if (t if t.isdigit() else t.lower()) not in known]
    ids = sorted({pk for pk, _ in rows})
    return Picked(ids[:cap], len(ids), unknown)


def _branch_ways(
    step: Step, here: list[int], now: dt.datetime, result: DryRun
) -> dict[str, list[int]]:
    ways: defaultdict[str, list[int]] = defaultdict(list)
    for start in range(0, len(here), BATCH):
        batch = here[start : start + BATCH]
        # No enrollment row exists: negative ids cannot collide with a real one.
        decisions = branch_decide(step, [Entrant(-cid, cid, now) for cid in batch], now=now)
        for cid in batch:
            decision = decisions.get(-cid)
            if decision is None:
                result.gone += 1
            else:
                ways[decision.key].append(cid)
    return ways


def _ways(
    journey: Journey, step: Step, here: list[int], now: dt.datetime, result: DryRun
) -> dict[str, list[int]] | None:
    """{list key: contacts} at a step that chooses a way; None for a step that does not."""
    kind = step.get("type")
    if kind == "branch":
        return _branch_ways(step, here, now, result)
    if kind == "split":
        ways: defaultdict[str, list[int]] = defaultdict(list)
        for cid in here:
            ways[split_decide(step, journey_id=journey.pk, contact_id=cid)].append(cid)
        return ways
    if kind == "wait_for":
        return {"timed_out": here}
    return None


def dry_run(journey: Journey, contact_ids: Sequence[int], *, now: dt.datetime) -> DryRun:
    """Where each of these contacts would go through the journey's current version."""
    version = journey.current_version
    flow = Flow(version.steps if version is not None else [])
    result = DryRun(contacts=len(contact_ids))
    at: defaultdict[str, list[int]] = defaultdict(list)

    def go(step_id: str | None, ids: list[int]) -> None:
        if step_id is None:
            result.completed += len(ids)
        else:
            at[step_id].extend(ids)

    go(flow.first(), list(contact_ids))
    for step in flow:
        step_id = str(step["id"])
        here = at.pop(step_id, [])
        if not here:
            continue
        result.reached[step_id] = len(here)
        if step.get("type") == "exit":
            continue
        ways = _ways(journey, step, here, now, result)
        if ways is None:
            go(flow.after(step_id), here)
            continue
        for key, ids in ways.items():
            result.lanes[(step_id, key)] += len(ids)
            go(flow.after(step_id) if key == HOLDOUT else flow.enter(step_id, key), ids)
    return result
