"""Validation of a whole rule, with the same forms that render each condition and action.
Every problem comes back with a path such as "conditions[1].count", so the admin, the YAML
import and the API all name the field at fault. An invalid rule never reaches the engine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.utils.dateparse import parse_datetime

from triggers.actions import actions
from triggers.conditions import conditions
from triggers.models import TriggerRule

MATCH_MODES = tuple(TriggerRule.MatchMode.values)
REENTRY = tuple(TriggerRule.Reentry.values)
RULE_KEYS = {
    "name",
    "slug",
    "enabled",
    "description",
    "conditions",
    "match_mode",
    "actions",
    "reentry",
    "reentry_days",
    "priority",
    "active_from",
    "active_until",
    "audience_segment",
    "version",
}


@dataclass(frozen=True)
class FieldError:
    path: str  # e.g. "conditions[1].count"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def entries_validate(
    kind: str, raw: Any, registry: Any, errors: list[FieldError]
) -> list[dict[str, Any]]:
    """A list of {"id": ..., options} entries of one registry, each checked by its form;
    `kind` is the list's path ("conditions", or a journey branch's "steps[1].conditions")."""
    if not isinstance(raw, list):
        errors.append(FieldError(kind, 'a list of {"id": ..., options} objects.'))
        return []
    if not raw:
        errors.append(FieldError(kind, f"at least one entry is needed ({kind} must not be empty)."))
    cleaned: list[dict[str, Any]] = []
    for index, entry in enumerate(raw):
        path = f"{kind}[{index}]"
        if not isinstance(entry, dict):
            errors.append(FieldError(path, 'an object such as {"id": "...", ...}.'))
            continue
        type_id = entry.get("id")
        handler = registry.get(type_id) if isinstance(type_id, str) else None
        if handler is None:
            known = ", ".join(choice[0] for choice in registry.choices())
            errors.append(FieldError(f"{path}.id", f"unknown type {type_id!r}; one of {known}."))
            continue
        options = {key: value for key, value in entry.items() if key != "id"}
        clean, problems = handler.clean_options(options)
        for field, messages in problems.items():
            for message in messages:
                errors.append(FieldError(f"{path}.{field}", str(message)))
        if not problems:
            cleaned.append(clean)
    return cleaned


def _datetime(value: Any, path: str, errors: list[FieldError]) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed: dt.datetime | None = value
    else:
        parsed = parse_datetime(str(value))
    if parsed is None:
        errors.append(
            FieldError(path, f"a date and time such as 2026-03-01T00:00:00Z, not {value!r}.")
        )
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.isoformat()


def _identity(data: dict[str, Any], out: dict[str, Any], errors: list[FieldError]) -> None:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors.append(FieldError("name", "a name of 1 to 200 characters is needed."))
    else:
        out["name"] = name.strip()
    slug = data.get("slug")
    try:
        if not isinstance(slug, str) or len(slug) > 100:
            raise ValidationError("a slug is needed")
        validate_slug(slug)
        out["slug"] = slug
    except ValidationError:
        errors.append(
            FieldError("slug", f"letters, digits, - and _ only (e.g. win-back), not {slug!r}.")
        )


def _reentry(data: dict[str, Any], out: dict[str, Any], errors: list[FieldError]) -> None:
    reentry = data.get("reentry", TriggerRule.Reentry.ONCE_PER_DAYS.value)
    if reentry not in REENTRY:
        errors.append(FieldError("reentry", f"one of {', '.join(REENTRY)}, not {reentry!r}."))
    out["reentry"] = reentry
    days = data.get("reentry_days")
    if reentry == TriggerRule.Reentry.ONCE_PER_DAYS:
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            errors.append(
                FieldError("reentry_days", "once_per_days needs a number of days from 1 to 3650.")
            )
            days = None
    else:
        days = None
    out["reentry_days"] = days


def rule_validate(data: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Returns (the rule with normalised options, errors). Empty errors: valid."""
    from segments.models import Segment

    errors: list[FieldError] = []
    if not isinstance(data, dict):
        return {}, [FieldError("rule", "a mapping of rule fields.")]
    for key in sorted(set(data) - RULE_KEYS):
        errors.append(FieldError(key, f"unknown field; allowed: {', '.join(sorted(RULE_KEYS))}."))
    out: dict[str, Any] = {}
    _identity(data, out, errors)
    enabled = data.get("enabled", False)
    if not isinstance(enabled, bool):
        errors.append(FieldError("enabled", "true or false."))
    out["enabled"] = bool(enabled)
    description = data.get("description") or ""
    out["description"] = str(description)
    match_mode = data.get("match_mode", TriggerRule.MatchMode.ALL.value)
    if match_mode not in MATCH_MODES:
        errors.append(FieldError("match_mode", f"all or any, not {match_mode!r}."))
    out["match_mode"] = match_mode
    _reentry(data, out, errors)
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        errors.append(FieldError("priority", "a whole number, e.g. 10."))
        priority = 0
    out["priority"] = priority
    out["active_from"] = _datetime(data.get("active_from"), "active_from", errors)
    out["active_until"] = _datetime(data.get("active_until"), "active_until", errors)
    start, end = out["active_from"], out["active_until"]
    if start and end and dt.datetime.fromisoformat(start) >= dt.datetime.fromisoformat(end):
        errors.append(FieldError("active_until", "must be after active_from."))
    audience = data.get("audience_segment") or None
    if audience is not None and not Segment.objects.filter(slug=str(audience)).exists():
        errors.append(FieldError("audience_segment", f"no segment with the slug {audience!r}."))
    out["audience_segment"] = audience
    out["conditions"] = entries_validate("conditions", data.get("conditions"), conditions, errors)
    out["actions"] = entries_validate("actions", data.get("actions"), actions, errors)
    return out, errors
