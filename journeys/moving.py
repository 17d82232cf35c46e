"""Moving the contacts waiting on an older version of a journey onto a newer one.

A contact stays on the version it entered (docs/journeys.md): a structural edit never
changes what an enrolled contact walks. When a marketer wants the waiting contacts on the new
steps anyway, they move them: a contact at a step that exists in both versions stays at it
(a wait keeps its due time, a held send its delivery);
for a step the new version removed, the marketer must say where its contacts go (another
step of the new version, or "exit"), and nothing moves until every such step is answered.

Set-based: one UPDATE per (old step) group, whatever the number of contacts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from journeys.flow import Flow
from journeys.models import Enrollment, Journey, JourneyVersion, StepRun

EXIT = "exit"


class MoveRefused(ValueError):
    """The move cannot happen as asked; `problems` names each step at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class MovePlan:
    """What a move would do: {old step id: (target step id or EXIT, contacts)}."""

    source: JourneyVersion
    target: JourneyVersion
    moves: dict[str, tuple[str, int]] = field(default_factory=dict)
    unmapped: dict[str, int] = field(default_factory=dict)  # removed steps with no answer

    @property
    def contacts(self) -> int:
        return sum(count for _, count in self.moves.values())


def _active(version: JourneyVersion) -> dict[str, int]:
    return {
        row["step_id"]: row["n"]
        for row in Enrollment.objects.filter(version=version, status=Enrollment.Status.ACTIVE)
        .values("step_id")
        .annotate(n=Count("id"))
    }


def move_plan(
    *,
    journey: Journey,
    source: JourneyVersion,
    target: JourneyVersion | None = None,
    mapping: Mapping[str, str] | None = None,
) -> MovePlan:
    """What moving `source`'s active contacts to `target` (the current version by default)
    would do. MoveRefused names every problem: a mapping onto a step the target lacks, a
    mapping for a step that is not removed, the same version twice."""
    target = target or journey.current_version
    mapping = dict(mapping or {})
    problems: list[str] = []
    if target is None or source.journey_id != journey.pk or target.journey_id != journey.pk:
        raise MoveRefused([f"both versions must belong to the journey {journey.slug!r}."])
    if source.pk == target.pk:
        raise MoveRefused([f"version {source.number} is already the target."])
    new_flow, old_flow = Flow(target.steps), Flow(source.steps)
    for old_id, new_id in sorted(mapping.items()):
        if old_id not in old_flow:
            problems.append(f"{old_id}: version {source.number} has no such step.")
        elif old_id in new_flow:
            problems.append(
                f"{old_id}: the step is still in version {target.number}; its contacts stay "
                "at it, so it takes no mapping."
            )
        if new_id != EXIT and new_id not in new_flow:
            problems.append(
                f"{old_id}: version {target.number} has no step {new_id!r} "
                f"(one of its step ids, or {EXIT})."
            )
    if problems:
        raise MoveRefused(problems)
    plan = MovePlan(source=source, target=target)
    for step_id, count in sorted(_active(source).items()):
        if step_id in new_flow:
            plan.moves[step_id] = (step_id, count)
        elif step_id in mapping:
            plan.moves[step_id] = (mapping[step_id], count)
        else:
            plan.unmapped[step_id] = count
    return plan


@transaction.atomic
def enrollments_move(plan: MovePlan, *, now: dt.datetime | None = None) -> int:
    """Carry out a plan; returns the contacts moved. Refused while a removed step holding
    contacts has no answer."""
    if plan.unmapped:
        raise MoveRefused(
            [
                f"{step_id}: {count} contact(s) wait at this step, which version "
                f"{plan.target.number} removed: say where they go (a step id or {EXIT})."
                for step_id, count in sorted(plan.unmapped.items())
            ]
        )
    now = now or timezone.now()
    moved = 0
    for old_id, (new_id, _) in plan.moves.items():
        rows = Enrollment.objects.filter(
            version=plan.source, status=Enrollment.Status.ACTIVE, step_id=old_id
        )
        if new_id == old_id:
            moved += rows.update(version=plan.target)
            continue
        StepRun.objects.filter(
            enrollment__in=rows.values("pk"), step_id=old_id, status=StepRun.Status.RUNNING
        ).update(status=StepRun.Status.DONE, finished_at=now, outcome={"moved_to": new_id})
        if new_id == EXIT:
            moved += rows.update(
                version=plan.target,
                status=Enrollment.Status.EXITED,
                exit_reason=f"moved to version {plan.target.number}: {old_id} removed",
                finished_at=now,
                due_at=None,
                awaiting_event="",
            )
        else:
            moved += rows.update(
                version=plan.target,
                step_id=new_id,
                step_started_at=now,
                due_at=now,
                awaiting_event="",
            )
    return moved
