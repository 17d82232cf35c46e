"""The find command's service: every block paired and scored in batches, candidates saved."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from crm.models import MergeCandidate
from crm.services.duplicates.blocking import (
    alias_pairs,
    block_querysets,
    blocks,
    oversized_blocks,
)
from crm.services.duplicates.scoring import contact_facts, pair_score

DEFAULT_MIN_SCORE = 50.0
DEFAULT_MAX_BLOCK = 50
DEFAULT_BATCH_SIZE = 1000

Progress = Callable[[str], None]


@dataclass
class DetectionStats:
    pairs_scored: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    below_threshold: int = 0
    already_reviewed: int = 0
    oversized_blocks: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        skipped = sum(self.oversized_blocks.values())
        return (
            f"{self.pairs_scored} pairs scored: {self.created} new candidates, "
            f"{self.updated} re-scored, {self.unchanged} unchanged, "
            f"{self.already_reviewed} already reviewed, {self.below_threshold} below the "
            f"threshold; {skipped} blocks too large to compare were skipped"
        )


def _save_scored(pairs: list[tuple[int, int]], *, min_score: float, stats: DetectionStats) -> None:
    facts = contact_facts(itertools.chain.from_iterable(pairs))
    lows = {a for a, _ in pairs}
    highs = {b for _, b in pairs}
    existing = {
        (candidate.contact_a_id, candidate.contact_b_id): candidate
        for candidate in MergeCandidate.objects.filter(
            contact_a_id__in=lows, contact_b_id__in=highs
        )
    }
    new: list[MergeCandidate] = []
    changed: list[MergeCandidate] = []
    for a, b in pairs:
        stats.pairs_scored += 1
        current = existing.get((a, b))
        if current is not None and current.status != MergeCandidate.Status.OPEN:
            stats.already_reviewed += 1
            continue
        if a not in facts or b not in facts:
            continue  # merged or deleted since the block was read
        result = pair_score(facts[a], facts[b])
        if current is not None:
            if current.score == result.score and current.reasons == result.reasons:
                stats.unchanged += 1
            else:
                current.score, current.reasons = result.score, result.reasons
                changed.append(current)
            continue
        if not result.has_evidence or result.score < min_score:
            stats.below_threshold += 1
            continue
        new.append(
            MergeCandidate(
                contact_a_id=a, contact_b_id=b, score=result.score, reasons=result.reasons
            )
        )
    if new:
        # ignore_conflicts: a detection running beside this one may have written a pair too.
        MergeCandidate.objects.bulk_create(new, ignore_conflicts=True)
        stats.created += len(new)
    if changed:
        MergeCandidate.objects.bulk_update(changed, ["score", "reasons"])
        stats.updated += len(changed)


def duplicates_find(
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    max_block: int = DEFAULT_MAX_BLOCK,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> DetectionStats:
    """Propose every likely duplicate pair scoring at least `min_score` as an open
    MergeCandidate; re-score open ones; leave dismissed ones alone. Reports progress
    through `progress` once per block type and once per batch of scored pairs."""
    say = progress or (lambda message: None)
    stats = DetectionStats()
    seen: set[tuple[int, int]] = set()
    pending: list[tuple[int, int]] = []

    def flush() -> None:
        if pending:
            _save_scored(pending, min_score=min_score, stats=stats)
            pending.clear()
            say(f"  {stats.pairs_scored} pairs scored, {stats.created} new candidates so far")

    def add(a: int, b: int) -> None:
        pair = (a, b) if a < b else (b, a)
        if pair in seen or a == b:
            return
        seen.add(pair)
        pending.append(pair)
        if len(pending) >= batch_size:
            flush()

    for name, queryset in block_querysets().items():
        say(f"Blocking by {name}...")
        stats.oversized_blocks[name] = oversized_blocks(queryset, max_block=max_block)
        for group in blocks(queryset, max_block=max_block):
            for a, b in itertools.combinations(group, 2):
                add(a, b)
        flush()
    say("Blocking by former addresses (aliases)...")
    for a, b in alias_pairs():
        add(a, b)
    flush()
    say(stats.summary())
    return stats
