"""Segment definitions and membership (definitions.py) and per-contact analytics that
conditions can use (analytics.py)."""
