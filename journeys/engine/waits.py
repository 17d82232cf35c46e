"""The two waiting steps. `wait` holds the enrollment until a duration after it reached the
step, or until the next local time of day (on given weekdays) in the contact's zone,
DST-correct. `wait_for` holds it until an awaited event or the timeout; each time the engine
looks (on entering, on ingest, at the timeout) one query per group looks for the awaited
events since the step began, so an event that raced the wait is not lost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from campaigns.services.scheduling import contact_zone, local_time_on_or_after
from core.conditions import property_filters_q, where_load
from crm.models import Event
from journeys.engine.types import Context, Result, Row, Step, VersionInfo
from journeys.steps import WEEKDAYS

_UNITS = {"minutes": 1, "hours": 60, "days": 24 * 60}


def step_duration(step: Step) -> dt.timedelta:
    """A wait's or a wait_for's duration (validation made sure exactly one unit is set)."""
    for unit, minutes in _UNITS.items():
        if step.get(unit):
            return dt.timedelta(minutes=int(step[unit]) * minutes)
    raise ValueError(f"step {step.get('id')!r} has no duration")


def local_time_next(
    moment: dt.datetime, zone_name: str, until: str, weekdays: Sequence[str]
) -> dt.datetime:
    """The first instant at or after `moment` when the contact's wall clock shows `until`
    ("09:30") on one of `weekdays` (every day when empty)."""
    zone = contact_zone(zone_name)
    hour, minute = (int(part) for part in until.split(":"))
    at = dt.time(hour, minute)
    allowed = {WEEKDAYS.index(day) for day in weekdays} or set(range(7))
    candidate = local_time_on_or_after(moment, zone, at)
    for _ in range(8):
        if candidate.astimezone(zone).weekday() in allowed:
            return candidate
        candidate = local_time_on_or_after(candidate + dt.timedelta(minutes=1), zone, at)
    raise AssertionError("unreachable: every weekday recurs within a week")


def wait_due(step: Step, row: Row) -> dt.datetime:
    if step.get("until"):
        return local_time_next(
            row.step_started_at,
            row.contact_timezone,
            str(step["until"]),
            step.get("weekdays") or [],
        )
    return row.step_started_at + step_duration(step)


def run_wait(ctx: Context, info: VersionInfo, step: Step, rows: list[Row]) -> list[Result]:
    out = []
    for row in rows:
        due = wait_due(step, row)
        if due > ctx.now:
            out.append(Result(row, "hold", due_at=due))
        else:
            nxt = info.flow.after(row.step_id)
            out.append(Result(row, "move", next_step=nxt, ledger={"until": due.isoformat()}))
    return out


def _same_key(entry: Mapping[str, Any], key: str, value: Any) -> bool:
    if key not in entry or value is None:
        return False
    # Properties arrive as JSON: a cart id may be 8812 in one event and "8812" in another.
    return entry[key] == value or str(entry[key]) == str(value)


def wait_for_matches(step: Step, rows: Sequence[Row], now: dt.datetime) -> dict[int, int]:
    """{enrollment id: the first awaited event since it reached the step}, one query for
    the whole group."""
    if not rows:
        return {}
    key = str(step.get("match_key") or "")
    fields = ["id", "contact_id", "occurred_at", *([f"properties__{key}"] if key else [])]
    where = property_filters_q(
        "properties", where_load(step.get("where") or []), absent_not_equal=False
    )
    events = (
        Event.objects.filter(
            contact_id__in={row.contact_id for row in rows},
            type=str(step["event"]),
            occurred_at__gte=min(row.step_started_at for row in rows),
            occurred_at__lte=now,
        )
        .filter(where)
        .order_by("occurred_at", "id")
        .values_list(*fields)
    )
    by_contact: dict[int, list[tuple[int, dt.datetime, Any]]] = {}
    for event_id, contact_id, occurred_at, *value in events:
        by_contact.setdefault(contact_id, []).append(
            (event_id, occurred_at, value[0] if value else None)
        )
    found: dict[int, int] = {}
    for row in rows:
        for event_id, occurred_at, value in by_contact.get(row.contact_id, []):
            if occurred_at < row.step_started_at:
                continue
            if key and not _same_key(row.entry_properties, key, value):
                continue
            found[row.pk] = event_id
            break
    return found


def run_wait_for(ctx: Context, info: VersionInfo, step: Step, rows: list[Row]) -> list[Result]:
    matches = wait_for_matches(step, rows, ctx.now)
    timeout = step_duration(step)
    event = str(step["event"])
    out = []
    for row in rows:
        event_id = matches.get(row.pk)
        deadline = row.step_started_at + timeout
        if event_id is not None:
            nxt = info.flow.enter(row.step_id, "matched")
            out.append(
                Result(row, "move", next_step=nxt, ledger={"matched": event_id, "event": event})
            )
        elif ctx.now >= deadline:
            nxt = info.flow.enter(row.step_id, "timed_out")
            out.append(Result(row, "move", next_step=nxt, ledger={"timed_out": True}))
        else:
            out.append(Result(row, "hold", due_at=deadline, awaiting=event))
    return out
