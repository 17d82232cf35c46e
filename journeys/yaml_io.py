"""Journeys as YAML, so they can live in version control: one journey per YAML document
(documents separated by ---). Import validates every journey first and changes nothing
when any is invalid; export writes the normal form, so export then import changes nothing.

Short steps (no nested step list) are written on one line, as a marketer would write them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from journeys.models import Journey
from journeys.steps import WHERE_ORDER, key_ordered, steps
from journeys.validation import journey_validate


class _Flow(dict[str, Any]):
    """A mapping written on one line: {id: done, type: exit}."""


class _FlowList(list[Any]):
    """A list written on one line: [{id: event_absent, event: order_completed, hours: 24}]."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Lists indented under their key ("steps:\n  - ..."), as the documentation shows.
        super().increase_indent(flow, False)


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


def _represent_flow_list(dumper: yaml.SafeDumper, data: _FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_FlowList, _represent_flow_list)

# The keys of a step that hold step lists; a split's arms hold them one level down ("steps").
_STEP_LISTS = ("then", "else", "matched", "timed_out")


def _styled_step(step: dict[str, Any]) -> dict[str, Any]:
    handler = steps.get(str(step.get("type")))
    if handler is not None:
        step = handler.ordered(step)
    nested = [key for key in (*_STEP_LISTS, "arms") if key in step]
    if not nested:
        return _Flow(step)
    out: dict[str, Any] = {}
    for key, value in step.items():
        if key in _STEP_LISTS:
            out[key] = [_styled_step(child) for child in value]
        elif key == "arms":
            out[key] = [_styled_arm(arm) for arm in value]
        elif isinstance(value, list):
            out[key] = _FlowList(_Flow(v) if isinstance(v, dict) else v for v in value)
        else:
            out[key] = value
    return out


def _styled_arm(arm: dict[str, Any]) -> dict[str, Any]:
    return {**arm, "steps": [_styled_step(child) for child in arm.get("steps") or []]}


def journey_document(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A journey's normal form as written in YAML: defaults left out, short parts inline."""
    out: dict[str, Any] = {"slug": snapshot["slug"], "name": snapshot["name"]}
    if snapshot["description"]:
        out["description"] = snapshot["description"]
    out["enabled"] = snapshot["enabled"]
    if snapshot["status"] != Journey.Status.ACTIVE:
        out["status"] = snapshot["status"]
    out["reentry"] = _Flow(snapshot["reentry"])
    if snapshot["goal"]:
        goal = key_ordered(snapshot["goal"], ("event", "within_days", "where"))
        if "where" in goal:
            goal["where"] = _FlowList(_Flow(key_ordered(f, WHERE_ORDER)) for f in goal["where"])
        out["goal"] = _Flow(goal)
    if snapshot["entry_segment"]:
        out["entry_segment"] = snapshot["entry_segment"]
    out["steps"] = [_styled_step(step) for step in snapshot["steps"]]
    return out


def steps_yaml(steps: list[dict[str, Any]]) -> str:
    """A step tree as the YAML export writes it, for showing in admin."""
    return yaml.dump(
        {"steps": [_styled_step(step) for step in steps]},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )


def journeys_export(*, slugs: list[str] | None = None) -> str:
    journeys = Journey.objects.select_related("current_version", "entry_segment").order_by("slug")
    if slugs:
        journeys = journeys.filter(slug__in=slugs)
    documents = [journey_document(journey.snapshot()) for journey in journeys]
    return yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        explicit_start=len(documents) > 1,
    )


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # e.g. "journey 2 (win-back): steps[1].then[0].campaign: no campaign with the slug 'x'."
    errors: list[str] = field(default_factory=list)


def _problems(documents: list[Any]) -> list[str]:
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, document in enumerate(documents, start=1):
        slug = document.get("slug") if isinstance(document, dict) else None
        where = f"journey {number}" + (f" ({slug})" if isinstance(slug, str) else "")
        _, problems = journey_validate(document)
        if isinstance(slug, str) and slug in seen:
            problems.append(("slug", f"also used by journey {seen[slug]}."))
        if isinstance(slug, str):
            seen.setdefault(slug, number)
        errors.extend(f"{where}: {path}: {message}" for path, message in problems)
    return errors


def journeys_import(
    *, text: str, user: AbstractBaseUser | AnonymousUser | None = None
) -> ImportReport:
    from journeys.services import journey_save

    report = ImportReport()
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        report.errors.append(f"the file is not valid YAML: {exc}")
        return report
    if not documents:
        report.errors.append("the file holds no journey.")
        return report
    report.errors = _problems(documents)
    if report.errors:
        return report
    with transaction.atomic():
        for document in documents:
            saved = journey_save(document, via="import", user=user)
            if saved.created:
                report.created.append(saved.journey.slug)
            elif saved.changed:
                report.updated.append(saved.journey.slug)
            else:
                report.unchanged.append(saved.journey.slug)
    return report
