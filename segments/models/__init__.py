"""Segment definitions and membership (definitions.py) and per-contact analytics that
conditions can use (analytics.py)."""

from segments.models.analytics import *  # noqa: F403
from segments.models.definitions import *  # noqa: F403
