"""The registry of action types: importing this package registers every type."""

from triggers.actions import attribute, campaign, lists, webhook  # noqa: F401
from triggers.actions.base import ActionError, ActionType, actions

__all__ = ["ActionError", "ActionType", "actions"]
