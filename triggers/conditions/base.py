"""The base of every condition type, and the registry the admin, validation and the compiler
walk. One small class per module, like Sentry's rule conditions."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.db.models import Q

from triggers.facts import Need
from triggers.registry import RegisteredType, Registry

# A durable_rules JSON expression over one fact snapshot, e.g. {"$gte": {"ev_1a2b": 3}}.
Expression = dict[str, Any]


class ConditionType(RegisteredType):
    # True when the answer can change with the clock alone (sweeps re-check these rules).
    time_dependent: ClassVar[bool] = False
    # True when candidates() reads a rollup on Contact (last_activity_at, last_purchase_at)
    # that only knows the present, while a backtest rebuilds the fact from past events: a
    # backtest must not narrow its candidates with it.
    candidates_read_rollups: ClassVar[bool] = False

    def facts_needed(self, options: dict[str, Any]) -> list[Need]:
        raise NotImplementedError

    def compile(self, options: dict[str, Any]) -> Expression:
        """The durable_rules expression: pure, over the keys facts_needed() names."""
        raise NotImplementedError

    def candidates(self, options: dict[str, Any], *, now: dt.datetime) -> Q | None:
        """A Contact filter that every contact who can match satisfies (None: no cheap
        narrowing), so sweeps only build snapshots for contacts that can match."""
        return None


class ConditionRegistry(Registry[ConditionType]):
    kind = "condition"


conditions = ConditionRegistry()
