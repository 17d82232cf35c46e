"""What a journey's enrollments and step ledger say, read in a constant number of grouped
queries: `journey_status` (the `journeys status` JSON, the diagram's counts, split arms
compared like A/B arms) and `journey_explain` (the path one contact took and why).

Counts are per published version: a version's steps are what its contacts walk, and two
versions may give the same step id a different meaning."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypedDict

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.fields.json import KT

from campaigns.abtest.stats import compare
from campaigns.models import Delivery
from crm.models import Contact
from journeys.decisions import HOLDOUT
from journeys.flow import Flow
from journeys.models import Enrollment, Journey, JourneyVersion, StepRun


class StepStatus(TypedDict):
    id: str
    type: str
    entered: int
    waiting: int
    done: int
    failed: int


class ArmStatus(TypedDict):
    arm: str  # "arms[0]" or "holdout"
    label: str  # "A (weight 50)", "holdout"
    enrolled: int
    converted: int
    rate: float | None
    against: str | None  # the arm compared with: the holdout, else the first arm
    difference: float | None
    difference_ci: tuple[float, float] | None
    p_value: float | None


class JourneyStatus(TypedDict):
    slug: str
    version: int | None
    enrolled: int
    active: int
    completed: int
    converted: int
    exited: int
    failed: int
    steps: list[StepStatus]
    paths: dict[str, dict[str, int]]  # {branch/split/wait_for id: {"then": n, ...}}
    splits: dict[str, list[ArmStatus]]


def _arm_label(step: Mapping[str, Any], key: str) -> str:
    if key == HOLDOUT:
        return "holdout"
    index = int(key[len("arms[") : -1])
    weight = (step.get("arms") or [{}] * (index + 1))[index].get("weight")
    return f"{chr(ord('A') + index)} (weight {weight})"


CHOOSING = ("branch", "split", "wait_for")


def _choices(flow: Flow, runs: QuerySet[StepRun]) -> dict[str, dict[str, tuple[int, int]]]:
    """{step id: {list key: (enrollments, of them converted)}} for every step that chooses a
    way (branch, split, wait_for), from their done ledger rows in one grouped query."""
    ids = [str(s["id"]) for s in flow if s.get("type") in CHOOSING]
    out: dict[str, dict[str, tuple[int, int]]] = {step_id: {} for step_id in ids}
    if not ids:
        return out
    rows = (
        runs.filter(step_id__in=ids, status=StepRun.Status.DONE)
        .values(
            "step_id",
            branch=KT("outcome__branch"),
            arm=KT("outcome__arm"),
            timed_out=KT("outcome__timed_out"),
        )
        .annotate(
            enrolled=Count("enrollment", distinct=True),
            converted=Count(
                "enrollment",
                distinct=True,
                filter=Q(enrollment__status=Enrollment.Status.CONVERTED),
            ),
        )
        .order_by()
    )
    for row in rows:
        key = row["branch"] or row["arm"] or ("timed_out" if row["timed_out"] else "matched")
        before = out[row["step_id"]].get(str(key), (0, 0))
        out[row["step_id"]][str(key)] = (
            before[0] + row["enrolled"],
            before[1] + row["converted"],
        )
    return out


def _splits(
    flow: Flow, choices: Mapping[str, Mapping[str, tuple[int, int]]]
) -> dict[str, list[ArmStatus]]:
    """Enrolled and converted per arm of every split; each arm is compared with the
    holdout when the split has one, else with its first arm."""
    out: dict[str, list[ArmStatus]] = {}
    for step in flow:
        if step.get("type") != "split":
            continue
        step_id = str(step["id"])
        counts = choices.get(step_id, {})
        keys = [f"arms[{i}]" for i in range(len(step.get("arms") or []))]
        if step.get("holdout"):
            keys.append(HOLDOUT)
        control = HOLDOUT if step.get("holdout") else keys[0] if keys else ""
        cn, cx = counts.get(control, (0, 0))
        arms: list[ArmStatus] = []
        for key in keys:
            n_enrolled, n_converted = counts.get(key, (0, 0))
            versus = None if key == control else compare(n_converted, n_enrolled, cx, cn)
            arms.append(
                ArmStatus(
                    arm=key,
                    label=_arm_label(step, key),
                    enrolled=n_enrolled,
                    converted=n_converted,
                    rate=n_converted / n_enrolled if n_enrolled else None,
                    against=None if key == control else control,
                    difference=versus.difference if versus else None,
                    difference_ci=versus.difference_ci if versus else None,
                    p_value=versus.p_value if versus else None,
                )
            )
        out[step_id] = arms
    return out


def journey_status(journey: Journey, *, version: JourneyVersion | None = None) -> JourneyStatus:
    """Counts for one version (the current one by default). entered: enrollments that
    reached the step (a ledger row for it, or at it now); waiting: active enrollments at it;
    done: its done ledger rows. Six grouped queries, whatever the number of steps and
    contacts."""
    version = version or journey.current_version
    flow = Flow(version.steps if version is not None else [])
    enrollments = Enrollment.objects.filter(journey=journey, version=version)
    by_status = dict(
        enrollments.values("status").annotate(n=Count("id")).order_by().values_list("status", "n")
    )
    waiting = dict(
        enrollments.filter(status=Enrollment.Status.ACTIVE)
        .values_list("step_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("step_id", "n")
    )
    runs = StepRun.objects.filter(enrollment__journey=journey, enrollment__version=version)
    # Contacts at a step whose ledger row is not written yet (a wait records itself when it
    # ends) or never will be (they converted or left while there) entered it too.
    unrecorded = dict(
        enrollments.exclude(step_id="")
        .filter(
            ~Exists(StepRun.objects.filter(enrollment=OuterRef("pk"), step_id=OuterRef("step_id")))
        )
        .values_list("step_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("step_id", "n")
    )
    ledger: dict[str, dict[str, Any]] = {
        row["step_id"]: dict(row)
        for row in runs.values("step_id")
        .annotate(
            entered=Count("enrollment", distinct=True),
            done=Count("id", filter=Q(status=StepRun.Status.DONE)),
            failed=Count("id", filter=Q(status=StepRun.Status.FAILED)),
        )
        .order_by()
    }
    steps: list[StepStatus] = []
    for step in flow:
        step_id = str(step["id"])
        row = ledger.get(step_id, {})
        steps.append(
            StepStatus(
                id=step_id,
                type=str(step.get("type")),
                entered=int(row.get("entered", 0)) + int(unrecorded.get(step_id, 0)),
                waiting=int(waiting.get(step_id, 0)),
                done=int(row.get("done", 0)),
                failed=int(row.get("failed", 0)),
            )
        )
    choices = _choices(flow, runs)
    return JourneyStatus(
        slug=journey.slug,
        version=version.number if version is not None else None,
        enrolled=sum(by_status.values()),
        active=by_status.get(Enrollment.Status.ACTIVE, 0),
        completed=by_status.get(Enrollment.Status.COMPLETED, 0),
        converted=by_status.get(Enrollment.Status.CONVERTED, 0),
        exited=by_status.get(Enrollment.Status.EXITED, 0),
        failed=by_status.get(Enrollment.Status.FAILED, 0),
        steps=steps,
        paths={k: {key: n for key, (n, _) in v.items()} for k, v in choices.items()},
        splits=_splits(flow, choices),
    )


def versions_enrolled(journey: Journey) -> list[tuple[JourneyVersion, int]]:
    """The journey's versions that hold enrollments, newest first, with how many."""
    counted = (
        JourneyVersion.objects.filter(journey=journey)
        .annotate(n=Count("enrollments"))
        .filter(n__gt=0)
        .order_by("-number")
    )
    return [(v, int(getattr(v, "n"))) for v in counted]  # noqa: B009 (an annotation)


def status_table(status: JourneyStatus) -> list[str]:
    """The status as aligned text lines for the terminal."""
    enrolled = status["enrolled"]
    rate = f" ({status['converted'] / enrolled:.1%})" if enrolled else ""
    lines = [
        f"{status['slug']} v{status['version']}: {enrolled} enrolled, {status['active']} active, "
        f"{status['completed']} completed, {status['converted']} converted{rate}, "
        f"{status['exited']} exited, {status['failed']} failed",
        f"{'step':<24} {'type':<9} {'entered':>8} {'waiting':>8} {'done':>8} {'failed':>7}",
    ]
    for s in status["steps"]:
        lines.append(
            f"{s['id']:<24} {s['type']:<9} {s['entered']:>8} {s['waiting']:>8} "
            f"{s['done']:>8} {s['failed']:>7}"
        )
    for step_id, arms in status["splits"].items():
        lines.append(f"split {step_id}:")
        for arm in arms:
            rate_text = f"{arm['rate']:.1%}" if arm["rate"] is not None else "-"
            versus = ""
            if arm["against"] is not None and arm["difference"] is not None:
                p = f"p={arm['p_value']:.3f}" if arm["p_value"] is not None else "p=-"
                versus = f", {arm['difference']:+.1%} vs {arm['against']} ({p})"
            lines.append(
                f"  {arm['label']}: {arm['converted']} of {arm['enrolled']} converted "
                f"({rate_text}){versus}"
            )
    return lines


def contact_find(value: str) -> Contact | None:
    """A contact by id or email address (case-insensitive)."""
    if value.isdigit():
        return Contact.objects.filter(pk=int(value)).first()
    return Contact.objects.filter(email_key=value.strip().lower()).first()


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def _outcome_lines(
    step: Mapping[str, Any] | None, outcome: Mapping[str, Any], deliveries: Mapping[int, str]
) -> list[str]:
    """Why a step went the way it did, from its ledger outcome (and a send's delivery as it
    is now, which may have moved on since the ledger row was written)."""
    lines: list[str] = []
    if "branch" in outcome:
        lines.append(f"went {outcome['branch']}")
        for verdict in outcome.get("conditions") or []:
            mark = "holds" if verdict.get("holds") else "does not hold"
            values = ", ".join(f"{k} = {v}" for k, v in (verdict.get("values") or {}).items())
            lines.append(
                f"  {verdict.get('path')}: {verdict.get('description')}: {mark}"
                + (f" ({values})" if values else "")
            )
    elif "arm" in outcome:
        arm = str(outcome["arm"])
        lines.append(f"split arm {_arm_label(step or {}, arm) if step else arm}")
    elif "campaign" in outcome:
        fallback = " (fallback campaign)" if outcome.get("fallback") else ""
        lines.append(
            f"sent campaign {outcome['campaign']}{fallback} by {outcome.get('channel', '?')}, "
            f"delivery {outcome.get('delivery_id', '-')}: {outcome.get('delivery_status', '?')}"
        )
        now_status = deliveries.get(int(outcome.get("delivery_id") or 0))
        if now_status is not None and now_status != outcome.get("delivery_status"):
            lines[-1] += f" (now {now_status})"
    elif "until" in outcome:
        lines.append(f"waited until {outcome['until']}")
    elif "matched" in outcome:
        lines.append(f"matched {outcome.get('event')} event #{outcome['matched']}")
    elif outcome.get("timed_out"):
        lines.append("timed out: the event did not come")
    elif "action" in outcome:
        rest = ", ".join(f"{k}={v}" for k, v in outcome.items() if k != "action")
        lines.append(f"action {outcome['action']}" + (f": {rest}" if rest else ""))
    elif outcome.get("exit"):
        lines.append("exit step")
    if "error" in outcome:
        lines.append(f"error: {outcome['error']}")
    return lines


def _enrollment_end(enrollment: Enrollment, flow: Flow, now: dt.datetime) -> str:
    if enrollment.status == Enrollment.Status.ACTIVE:
        where = enrollment.step_id
        if enrollment.step_id in flow:
            described = flow.step(enrollment.step_id)
            where = f"{enrollment.step_id} ({described.get('type')})"
        awaiting = f", awaiting {enrollment.awaiting_event}" if enrollment.awaiting_event else ""
        due = enrollment.due_at
        late = " (due now)" if due is not None and due <= now else ""
        when = f"{_when(due)}{late}" if due is not None else "no time set"
        paused = " (journey paused)" if enrollment.journey.status == Journey.Status.PAUSED else ""
        return f"now at {where}{awaiting}, moves on at {when}{paused}"
    value = ""
    if enrollment.status == Enrollment.Status.CONVERTED:
        amount = enrollment.conversion_value
        value = f", conversion value {amount:.2f}" if isinstance(amount, Decimal) else ""
    return (
        f"left {_when(enrollment.finished_at)}: {enrollment.get_status_display()} "
        f"({enrollment.exit_reason or 'no reason recorded'}){value}"
    )


def journey_explain(
    journey: Journey, contact: Contact, *, now: dt.datetime | None = None
) -> list[str]:
    """Every enrollment of the contact in the journey, each ledger row in order with its
    time and why it went that way, and where the contact is now or how it left. Three
    queries, however many enrollments and steps."""
    from django.utils import timezone

    now = now or timezone.now()
    enrollments = list(
        Enrollment.objects.filter(journey=journey, contact=contact)
        .select_related("version", "journey")
        .order_by("entered_at", "pk")
    )
    who = contact.email or f"contact {contact.pk}"
    if not enrollments:
        return [f"{who} never entered {journey.slug}"]
    runs: dict[int, list[StepRun]] = {e.pk: [] for e in enrollments}
    for run in StepRun.objects.filter(enrollment__in=enrollments).order_by("sequence", "pk"):
        runs[run.enrollment_id].append(run)
    delivery_ids = {
        int(run.outcome["delivery_id"])
        for rows in runs.values()
        for run in rows
        if isinstance(run.outcome, dict) and str(run.outcome.get("delivery_id", "")).isdigit()
    }
    deliveries = dict(Delivery.objects.filter(pk__in=delivery_ids).values_list("pk", "status"))
    lines = [f"{who} in {journey.slug}: {len(enrollments)} enrollment(s)"]
    for enrollment in enrollments:
        flow = Flow(enrollment.version.steps)
        key = f", key {enrollment.entry_key}" if enrollment.entry_key else ""
        lines.append("")
        lines.append(
            f"enrollment {enrollment.pk} on v{enrollment.version.number}{key}: entered "
            f"{_when(enrollment.entered_at)}, {enrollment.get_status_display()}"
        )
        for run in runs[enrollment.pk]:
            step = flow.step(run.step_id) if run.step_id in flow else None
            kind = step.get("type") if step is not None else "removed step"
            lines.append(
                f"  {run.sequence}. {_when(run.started_at)} {run.step_id} ({kind}): {run.status}"
            )
            lines.extend(
                f"       {text}" for text in _outcome_lines(step, run.outcome or {}, deliveries)
            )
        lines.append(f"  {_enrollment_end(enrollment, flow, now)}")
    return lines
