"""The registry of condition types: importing this package registers every type."""

from triggers.conditions import activity, clock, events, profile, segments  # noqa: F401
from triggers.conditions.base import ConditionType, Expression, conditions

__all__ = ["ConditionType", "Expression", "conditions"]
