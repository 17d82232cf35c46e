"""Validation of a whole journey: its settings and its step tree, with the forms of
journeys/steps.py. Every problem comes back as (path, message) with a path such as
"steps[1].then[0].campaign", all of them at once, so the admin and the YAML import name each
field at fault. What comes back clean is the journey's normal form: what versions store, the
YAML export writes and the structure hash is taken of."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from core.conditions import where_clean
from journeys.models import Journey
from journeys.steps import Problem, steps
from triggers.conditions.events import EVENT_NAME, WHERE

JOURNEY_KEYS = (
    "slug",
    "name",
    "description",
    "enabled",
    "status",
    "reentry",
    "goal",
    "entry_segment",
    "steps",
)
REENTRY_MODES = tuple(Journey.Reentry.values)
STATUSES = tuple(Journey.Status.values)
MAX_DAYS = 3650


def _is_count(value: Any, top: int = MAX_DAYS) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top


def _slug_problem(value: Any) -> str | None:
    try:
        if not isinstance(value, str) or not value or len(value) > 100:
            raise ValidationError("a slug is needed")
        validate_slug(value)
    except ValidationError:
        return f"letters, digits, - and _ only (e.g. email-1), not {value!r}."
    return None


def _unknown(raw: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> list[Problem]:
    return [
        (f"{prefix}{key}", f"unknown key; allowed: {', '.join(allowed)}.")
        for key in sorted(set(raw) - set(allowed))
    ]


@dataclass
class _Tree:
    """Walks a step tree once, keeping every id's first path to name both on a duplicate."""

    problems: list[Problem]
    seen: dict[str, str] = field(default_factory=dict)

    def walk(self, raw: Any, path: str, problems: list[Problem]) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            problems.append((path, "a list of steps such as [{id: done, type: exit}]."))
            return []
        return [self.step(item, f"{path}[{index}]", problems) for index, item in enumerate(raw)]

    def step(self, raw: Any, path: str, problems: list[Problem]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            problems.append((path, "a step such as {id: cool-off, type: wait, minutes: 240}."))
            return {}
        step_id = raw.get("id")
        problem = _slug_problem(step_id)
        if problem:
            problems.append((f"{path}.id", problem))
        elif step_id in self.seen:
            problems.append(
                (f"{path}.id", f"{step_id!r} is used twice: at {self.seen[step_id]} and at {path}.")
            )
        else:
            self.seen[str(step_id)] = path
        type_id = raw.get("type")
        handler = steps.get(type_id) if isinstance(type_id, str) else None
        if handler is None:
            known = ", ".join(choice[0] for choice in steps.choices())
            problems.append((f"{path}.type", f"unknown step type {type_id!r}; one of {known}."))
            return {"id": step_id, "type": type_id}
        options = {k: v for k, v in raw.items() if k not in ("id", "type")}
        clean = handler.clean_step(options, path, self.walk, problems)
        return {"id": step_id, "type": handler.id, **clean}


def steps_validate(raw: Any) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The clean step tree and every problem in it."""
    tree = _Tree(problems=[])
    clean = tree.walk(raw, "steps", tree.problems)
    if isinstance(raw, list) and not raw:
        tree.problems.append(("steps", "a journey needs at least one step."))
    return clean, tree.problems


def _reentry(raw: Any, problems: list[Problem]) -> dict[str, Any]:
    if raw is None:
        return {"mode": Journey.Reentry.ONCE_EVER.value}
    if not isinstance(raw, dict):
        problems.append(("reentry", "a mapping such as {mode: once_per_days, days: 7}."))
        return {}
    problems.extend(_unknown(raw, ("mode", "days", "key"), "reentry."))
    mode = raw.get("mode")
    if mode not in REENTRY_MODES:
        problems.append(("reentry.mode", f"one of {', '.join(REENTRY_MODES)}, not {mode!r}."))
        return {}
    out: dict[str, Any] = {"mode": mode}
    if mode == Journey.Reentry.ONCE_PER_DAYS:
        if not _is_count(raw.get("days")):
            problems.append(("reentry.days", f"once_per_days needs days from 1 to {MAX_DAYS}."))
        out["days"] = raw.get("days")
    elif raw.get("days") is not None:
        problems.append(("reentry.days", "only once_per_days takes days."))
    if mode == Journey.Reentry.ONCE_PER_KEY:
        try:
            EVENT_NAME(raw.get("key") or "")
            out["key"] = raw["key"]
        except (ValidationError, KeyError):
            problems.append(("reentry.key", "once_per_key needs the entry property, e.g. cart_id."))
    elif raw.get("key") is not None:
        problems.append(("reentry.key", "only once_per_key takes a key."))
    return out


def _goal(raw: Any, problems: list[Problem]) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(("goal", "a mapping such as {event: order_completed, within_days: 7}."))
        return None
    problems.extend(_unknown(raw, ("event", "within_days", "where"), "goal."))
    out: dict[str, Any] = {"event": raw.get("event"), "within_days": raw.get("within_days")}
    try:
        EVENT_NAME(raw.get("event") or "")
    except ValidationError:
        problems.append(
            ("goal.event", f"an event name such as order_completed, not {out['event']!r}.")
        )
    if not _is_count(raw.get("within_days")):
        problems.append(("goal.within_days", f"a number of days from 1 to {MAX_DAYS}, e.g. 7."))
    filters, where_problems = where_clean(raw.get("where"), dialect=WHERE, path="goal.where")
    problems.extend(where_problems)
    if filters:
        out["where"] = [item.as_data() for item in filters]
    return out


def _identity(data: dict[str, Any], out: dict[str, Any], problems: list[Problem]) -> None:
    problem = _slug_problem(data.get("slug"))
    if problem:
        problems.append(("slug", problem))
    out["slug"] = data.get("slug")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        problems.append(("name", "a name of 1 to 200 characters is needed."))
    out["name"] = name.strip() if isinstance(name, str) else name
    description = data.get("description") or ""
    if not isinstance(description, str):
        problems.append(("description", "a text."))
    out["description"] = str(description)


def _settings(data: dict[str, Any], out: dict[str, Any], problems: list[Problem]) -> None:
    from segments.models import Segment

    enabled = data.get("enabled", False)
    if not isinstance(enabled, bool):
        problems.append(("enabled", "true or false."))
    out["enabled"] = enabled is True
    # Absent: the journey keeps the status it has, so re-importing a file never resumes a
    # journey someone paused (journey_save fills it in).
    status = data.get("status")
    if status is not None and status not in STATUSES:
        problems.append(("status", f"one of {', '.join(STATUSES)}, not {status!r}."))
    out["status"] = status
    segment = data.get("entry_segment") or None
    if segment is not None and not Segment.objects.filter(slug=str(segment)).exists():
        problems.append(("entry_segment", f"no segment with the slug {segment!r}."))
    out["entry_segment"] = segment


def journey_validate(data: Any) -> tuple[dict[str, Any], list[Problem]]:
    """Returns (the journey in normal form, every problem). No problems: valid. A status
    left out comes back as None: "as it is now"."""
    if not isinstance(data, dict):
        return {}, [("journey", "a mapping of journey fields such as slug, name and steps.")]
    problems = _unknown(data, JOURNEY_KEYS, "")
    out: dict[str, Any] = {}
    _identity(data, out, problems)
    _settings(data, out, problems)
    out["reentry"] = _reentry(data.get("reentry"), problems)
    out["goal"] = _goal(data.get("goal"), problems)
    if "steps" not in data:
        problems.append(("steps", "a journey needs a list of steps."))
    out["steps"], step_problems = steps_validate(data.get("steps", []))
    problems.extend(step_problems)
    return out, problems


def structure_hash(clean_steps: list[dict[str, Any]]) -> str:
    """Equal for equal step trees, whatever the key order they were written in."""
    text = json.dumps(clean_steps, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
