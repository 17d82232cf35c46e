"""The compiler: a pure function from validated rules (their snapshots) to a durable_rules
JSON ruleset. No database, no engine: tests assert on the JSON.

Each rule becomes one durable_rules rule over a single fact (the contact's snapshot):

    "<slug>": {"all": [{"m": {"$and": [{"$ex": {"cid": 1}}, <active window>, <audience>,
                                       <the conditions, joined by $and or $or>]}}]}

Two findings about durable-rules 2.0.28 shape this (docs/triggers.md):
- A posted *event* is consumed by the first rule that matches it, so snapshots are asserted
  as *facts*, which every matching rule sees.
- delete_state() on a session whose only message matched nothing crashes the process
  (SIGSEGV), so every ruleset carries a catch-all rule (CATCH_ALL) that matches every
  snapshot: no assert is ever "not handled", and every session can be deleted.

The ruleset's name carries a hash of its content: a name can be registered only once per
process, so a changed ruleset is a new name and the old one is abandoned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from triggers.conditions import conditions
from triggers.conditions.base import Expression
from triggers.facts import Need, SegmentNeed

CATCH_ALL = "__seen__"
RULESET_PREFIX = "cadence_rules_v"
EXPLAIN_PREFIX = "cadence_explain_v"


class CompileError(ValueError):
    """A rule that did not pass validation reached the compiler."""


@dataclass(frozen=True)
class CompiledRuleset:
    name: str
    definition: dict[str, dict[str, Any]]  # rule name -> durable_rules rule (no "run" yet)
    rule_slugs: tuple[str, ...]  # the trigger rules in it, by priority
    needs: frozenset[Need] = field(default_factory=frozenset)


def _epoch(value: str | None) -> int | None:
    if not value:
        return None
    return int(dt.datetime.fromisoformat(value).timestamp())


def condition_expression(entry: Mapping[str, Any]) -> Expression:
    handler = conditions.get(str(entry.get("id")))
    if handler is None:
        raise CompileError(f"unknown condition type {entry.get('id')!r}")
    return handler.compile(handler.options_of(entry))


def rule_guards(rule: Mapping[str, Any]) -> list[tuple[str, Expression]]:
    """What holds besides the conditions: the active window and the audience segment."""
    guards: list[tuple[str, Expression]] = []
    start, end = _epoch(rule.get("active_from")), _epoch(rule.get("active_until"))
    if start is not None:
        guards.append(("active_from", {"$gte": {"now_ts": start}}))
    if end is not None:
        guards.append(("active_until", {"$lt": {"now_ts": end}}))
    if rule.get("audience_segment"):
        need = SegmentNeed(str(rule["audience_segment"]))
        guards.append(("audience_segment", {need.member_key: True}))
    return guards


def rule_expression(rule: Mapping[str, Any]) -> Expression:
    if not rule.get("conditions"):
        raise CompileError(f"rule {rule.get('slug')!r} has no conditions")
    parts = [condition_expression(entry) for entry in rule["conditions"]]
    joined: Expression = (
        parts[0]
        if len(parts) == 1
        else {"$or" if rule.get("match_mode") == "any" else "$and": parts}
    )
    terms = [{"$ex": {"cid": 1}}, *(expr for _, expr in rule_guards(rule)), joined]
    return {"$and": terms}


def rule_needs(rule: Mapping[str, Any]) -> set[Need]:
    needs: set[Need] = set()
    for entry in rule.get("conditions", []):
        handler = conditions.get(str(entry.get("id")))
        if handler is None:
            raise CompileError(f"unknown condition type {entry.get('id')!r}")
        needs.update(handler.facts_needed(handler.options_of(entry)))
    if rule.get("audience_segment"):
        needs.add(SegmentNeed(str(rule["audience_segment"])))
    return needs


def _name(prefix: str, definition: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]
    return f"{prefix}{digest}"


def _catch_all() -> dict[str, Any]:
    return {"all": [{"m": {"$ex": {"cid": 1}}}]}


def ruleset_compile(rules: Iterable[Mapping[str, Any]]) -> CompiledRuleset:
    """Enabled rules (snapshots) in, one ruleset out. Disabled rules are left out."""
    enabled = sorted(
        (rule for rule in rules if rule.get("enabled")),
        key=lambda rule: (-int(rule.get("priority") or 0), str(rule["slug"])),
    )
    definition: dict[str, dict[str, Any]] = {}
    needs: set[Need] = set()
    for rule in enabled:
        if rule["slug"] == CATCH_ALL:
            raise CompileError(f"{CATCH_ALL} is reserved")
        definition[str(rule["slug"])] = {"all": [{"m": rule_expression(rule)}]}
        needs |= rule_needs(rule)
    definition[CATCH_ALL] = _catch_all()
    return CompiledRuleset(
        name=_name(RULESET_PREFIX, definition),
        definition=definition,
        rule_slugs=tuple(str(rule["slug"]) for rule in enabled),
        needs=frozenset(needs),
    )


def explain_compile(rule: Mapping[str, Any]) -> CompiledRuleset:
    """One engine rule per condition and guard of a single rule, for "why did or didn't
    this contact fire": rule names are "conditions[<i>]", "active_from", "audience_segment"..."""
    definition: dict[str, dict[str, Any]] = {}
    for name, expression in rule_guards(rule):
        definition[name] = {"all": [{"m": {"$and": [{"$ex": {"cid": 1}}, expression]}}]}
    for index, entry in enumerate(rule.get("conditions", [])):
        definition[f"conditions[{index}]"] = {
            "all": [{"m": {"$and": [{"$ex": {"cid": 1}}, condition_expression(entry)]}}]
        }
    definition[CATCH_ALL] = _catch_all()
    return CompiledRuleset(
        name=_name(EXPLAIN_PREFIX, definition),
        definition=definition,
        rule_slugs=(str(rule.get("slug")),),
        needs=frozenset(rule_needs(rule)),
    )


def needs_of(rules: Sequence[Mapping[str, Any]]) -> set[Need]:
    needs: set[Need] = set()
    for rule in rules:
        needs |= rule_needs(rule)
    return needs
