"""Deterministic variant and holdout assignment: a pure function of (campaign id, contact id),
so a launch, a retry, a trigger replay and a report all agree without storing a random draw.

Two independent uniform numbers come from SHA-256 of the ids with different labels: one
decides holdout (below holdout_percent / 100), the other picks a variant by cumulative
weight. Independent draws keep the variant split exact within the non-holdout audience."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

_SCALE = float(2**64)


def uniform(campaign_id: int, contact_id: int, label: str) -> float:
    """A number in [0, 1) that depends only on the arguments."""
    digest = hashlib.sha256(f"{label}:{campaign_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


@dataclass(frozen=True)
class Assignment:
    variant_id: int | None
    is_holdout: bool


def assign(
    *,
    campaign_id: int,
    contact_id: int,
    variants: Sequence[tuple[int, int]],
    holdout_percent: Decimal | float,
) -> Assignment:
    """`variants` is [(variant id, weight)] in a stable order (by id). A holdout contact
    gets no variant: it receives nothing and is measured."""
    if (
        float(holdout_percent) > 0
        and uniform(campaign_id, contact_id, "holdout") < float(holdout_percent) / 100
    ):
        return Assignment(variant_id=None, is_holdout=True)
    total = sum(weight for _, weight in variants)
    if total <= 0:
        raise ValueError("a campaign needs at least one variant with a positive weight")
    point = uniform(campaign_id, contact_id, "variant") * total
    running = 0
    for variant_id, weight in variants:
        running += weight
        if point < running:
            return Assignment(variant_id=variant_id, is_holdout=False)
    return Assignment(variant_id=variants[-1][0], is_holdout=False)


# --- A/B test share (docs/ab-testing.md) -----------------------------------------------------

# The occurrence under which the rest of a broadcast's audience gets the winning variant.
WINNER_OCCURRENCE = "winner"


def in_test_share(*, campaign_id: int, contact_id: int, test_share: int) -> bool:
    """Whether a contact belongs to the `test_share` percent of the audience that takes part
    in the A/B test; independent of the holdout and variant draws (its own label)."""
    if test_share >= 100:
        return True
    return uniform(campaign_id, contact_id, "test") < test_share / 100
