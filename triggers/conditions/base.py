"""The base of every condition type, and the registry the admin, validation and the compiler
walk. One small class per module, like Sentry's rule conditions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar, cast

from django.db.models import Q

from triggers.facts import Need
from triggers.registry import RegisteredType, Registry

# A durable_rules JSON expression over one fact snapshot, e.g. {"$gte": {"ev_1a2b": 3}}.
Expression = dict[str, Any]


# The TypedDict of one condition type's options (triggers.types).
OptionsT = TypeVar("OptionsT", bound=Mapping[str, object])


class ConditionType(RegisteredType, Generic[OptionsT]):
    # True when the answer can change with the clock alone (sweeps re-check these rules).
    time_dependent: ClassVar[bool] = False
    # True when candidates() reads a rollup on Contact (last_activity_at, last_purchase_at)
    # that only knows the present, while a backtest rebuilds the fact from past events: a
    # backtest must not narrow its candidates with it.
    candidates_read_rollups: ClassVar[bool] = False

    def options_of(self, entry: Mapping[str, Any]) -> OptionsT:
        """The options of a stored entry ({"id": ..., **options}). Entries are stored only
        after clean_options() passed, so their shape is the type's."""
        return cast(OptionsT, {key: value for key, value in entry.items() if key != "id"})

    def facts_needed(self, options: OptionsT) -> list[Need]:
        raise NotImplementedError

    def compile(self, options: OptionsT) -> Expression:
        """The durable_rules expression: pure, over the keys facts_needed() names."""
        raise NotImplementedError

    def candidates(self, options: OptionsT, *, now: dt.datetime) -> Q | None:
        """A Contact filter that every contact who can match satisfies (None: no cheap
        narrowing), so sweeps only build snapshots for contacts that can match."""
        return None


class ConditionRegistry(Registry[ConditionType[Any]]):
    kind = "condition"


conditions = ConditionRegistry()
