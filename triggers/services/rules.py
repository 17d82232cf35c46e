"""Saving a rule (validated, versioned), and the compiled ruleset each process keeps current."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Count, Max, Sum

from segments.models import Segment
from triggers.compiler import CompiledRuleset, CompileError, rule_needs, ruleset_compile
from triggers.engine import engine
from triggers.facts import SegmentNeed
from triggers.models import TriggerRule, TriggerRuleVersion
from triggers.validation import FieldError, rule_validate


class RuleInvalid(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


def trigger_rule_save(
    *,
    data: dict[str, Any],
    rule: TriggerRule | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    via: str = "",
) -> TriggerRule:
    """Validate `data` (a rule snapshot) and create or update the rule. A change bumps the
    version and records it in the history; saving the same content again changes nothing.
    Raises RuleInvalid with every field's problem."""
    clean, errors = rule_validate(data)
    if errors:
        raise RuleInvalid(errors)
    with transaction.atomic():
        if rule is None:
            rule = TriggerRule.objects.select_for_update().filter(slug=clean["slug"]).first()
        elif rule.pk is not None:
            rule = TriggerRule.objects.select_for_update().get(pk=rule.pk)
        if rule is None:
            rule = TriggerRule()
        before = rule.snapshot() if rule.pk else None
        audience = clean.pop("audience_segment")
        for key in ("active_from", "active_until"):
            clean[key] = dt.datetime.fromisoformat(clean[key]) if clean[key] else None
        for key, value in clean.items():
            setattr(rule, key, value)
        rule.audience_segment = Segment.objects.get(slug=audience) if audience else None
        after = rule.snapshot()
        if before == after:
            return rule
        rule.version += 1
        rule.save()
        TriggerRuleVersion.objects.create(
            rule=rule,
            version=rule.version,
            snapshot=after,
            edited_by=cast(Any, user) if (user is not None and user.is_authenticated) else None,
            edited_via=via,
        )
        # This process sees the change at once; other workers within the check interval.
        transaction.on_commit(ruleset_forget)
    return rule


# --- The current ruleset, per process ----------------------------------------------------------


@dataclass(frozen=True)
class RuleInfo:
    id: int
    slug: str
    version: int
    reentry: str
    reentry_days: int | None
    snapshot: Mapping[str, Any]  # a RuleSnapshot, or the dry run's edited copy of one


# (rules, last update, sum of versions): moves on every create, edit or delete.
RulesStamp = tuple[int, dt.datetime | None, int | None]


@dataclass
class _Current:
    stamp: RulesStamp | None = None
    checked_at: float = 0.0
    compiled: CompiledRuleset | None = None
    rules: dict[str, RuleInfo] = field(default_factory=dict)


_CURRENT = _Current()
_CURRENT_LOCK = threading.Lock()


def ruleset_forget() -> None:
    """Make the next evaluation in this process look at the stamp again."""
    with _CURRENT_LOCK:
        _CURRENT.checked_at = 0.0


def rules_stamp() -> RulesStamp:
    """Changes whenever any rule is created, edited or deleted: one cheap aggregate."""
    row = TriggerRule.objects.aggregate(n=Count("id"), last=Max("updated_at"), v=Sum("version"))
    return (row["n"], row["last"], row["v"])


def ruleset_current(*, force: bool = False) -> tuple[CompiledRuleset, dict[str, RuleInfo]]:
    """The compiled enabled rules. Workers look at the stamp at most every
    TRIGGER_RULES_CHECK_SECONDS and recompile only when it moved, so a save reaches every
    worker within seconds, without a restart."""
    interval = int(getattr(settings, "TRIGGER_RULES_CHECK_SECONDS", 2))
    with _CURRENT_LOCK:
        fresh = time.monotonic() - _CURRENT.checked_at < interval
        if _CURRENT.compiled is not None and fresh and not force:
            return _CURRENT.compiled, _CURRENT.rules
        stamp = rules_stamp()
        _CURRENT.checked_at = time.monotonic()
        if _CURRENT.compiled is None or stamp != _CURRENT.stamp:
            rules = list(
                TriggerRule.objects.filter(enabled=True).select_related("audience_segment")
            )
            snapshots = [rule.snapshot() for rule in rules]
            compiled = ruleset_compile(snapshots)
            engine().use(compiled)
            _CURRENT.compiled = compiled
            _CURRENT.rules = {
                rule.slug: RuleInfo(
                    id=rule.pk,
                    slug=rule.slug,
                    version=rule.version,
                    reentry=rule.reentry,
                    reentry_days=rule.reentry_days,
                    snapshot=snap.copy(),
                )
                for rule, snap in zip(rules, snapshots, strict=True)
            }
            _CURRENT.stamp = stamp
        assert _CURRENT.compiled is not None
        return _CURRENT.compiled, _CURRENT.rules


def segment_watched(*, segment_id: int) -> bool:
    """Whether an enabled rule looks at this segment (a segment condition or its audience):
    a membership change of any other segment cannot change what a rule decides, so its
    contacts need no evaluation. One query over the enabled rules; no engine."""
    slugs: set[str] = set()
    for rule in TriggerRule.objects.filter(enabled=True).select_related("audience_segment"):
        try:
            needs = rule_needs(rule.snapshot())
        except CompileError:
            return True  # cannot tell: evaluate, as before
        slugs.update(need.slug for need in needs if isinstance(need, SegmentNeed))
    return bool(slugs) and Segment.objects.filter(pk=segment_id, slug__in=slugs).exists()
