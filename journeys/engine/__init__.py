"""The journeys engine: claiming due enrollments (claim.py), advancing them in rounds
(advance.py, apply.py) through one runner per step type (runners.py, waits.py, sends.py).
docs/journeys.md, "Advancing (for engineers)", tells the whole story."""

from journeys.engine.advance import MAX_ROUNDS, enrollments_advance
from journeys.engine.claim import LEASE, claim_lease, enrollments_claim, enrollments_release
from journeys.engine.types import AdvanceReport

__all__ = [
    "LEASE",
    "MAX_ROUNDS",
    "AdvanceReport",
    "claim_lease",
    "enrollments_advance",
    "enrollments_claim",
    "enrollments_release",
]
