"""Segment definitions and membership (definitions.py), per-contact analytics that
conditions can use (analytics.py) and static lists kept by hand or by rules (lists.py)."""

from segments.models.analytics import *  # noqa: F403
from segments.models.definitions import *  # noqa: F403
from segments.models.lists import *  # noqa: F403
