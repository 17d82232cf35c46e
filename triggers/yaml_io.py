"""Rules as YAML, so they can live in version control. Import validates every rule first and
imports nothing when any is invalid; every error names the rule and the field."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from triggers.models import TriggerRule
from triggers.validation import FieldError, rule_validate

HEADER = "# Cadence trigger rules: `python manage.py triggers import FILE` loads this file.\n"


def rules_export(*, slugs: list[str] | None = None) -> str:
    rules = TriggerRule.objects.select_related("audience_segment").order_by("slug")
    if slugs:
        rules = rules.filter(slug__in=slugs)
    data = {"rules": [dict(rule.snapshot()) for rule in rules]}
    return HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # e.g. "rules[1] (win-back): conditions[0].days: ..."
    errors: list[str] = field(default_factory=list)


def rules_import(
    *, text: str, user: AbstractBaseUser | AnonymousUser | None = None
) -> ImportReport:
    from triggers.services.rules import trigger_rule_save

    report = ImportReport()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        report.errors.append(f"the file is not valid YAML: {exc}")
        return report
    entries = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        report.errors.append('the file needs a top-level "rules:" list.')
        return report
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        slug = entry.get("slug") if isinstance(entry, dict) else None
        where = f"rules[{index}]" + (f" ({slug})" if slug else "")
        if isinstance(entry, dict) and "version" in entry:
            entry = {k: v for k, v in entry.items() if k != "version"}
        _, problems = rule_validate(entry if isinstance(entry, dict) else {})
        if not isinstance(entry, dict):
            problems = [FieldError("rule", "a mapping of rule fields.")]
        if isinstance(slug, str):
            if slug in seen:
                problems.append(FieldError("slug", f"also used by rules[{seen[slug]}]."))
            seen[slug] = index
        report.errors.extend(f"{where}: {problem}" for problem in problems)
    if report.errors:
        return report
    with transaction.atomic():
        for entry in entries:
            entry = {k: v for k, v in entry.items() if k != "version"}
            existing = TriggerRule.objects.filter(slug=entry["slug"]).first()
            before = existing.version if existing else None
            rule = trigger_rule_save(data=entry, rule=existing, user=user, via="import")
            if existing is None:
                report.created.append(rule.slug)
            elif rule.version != before:
                report.updated.append(rule.slug)
            else:
                report.unchanged.append(rule.slug)
    return report
