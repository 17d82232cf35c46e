"""Open candidates after the find pass: re-scored when a merge moved one side, dismissed by
a reviewer."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils import timezone

from crm.models import MergeCandidate
from crm.services.duplicates.scoring import contact_facts, pair_score


def candidates_rescore(*, candidate_ids: Iterable[int]) -> int:
    """Score open candidates again from the contacts as they are now (after a merge moved
    one side); returns how many changed."""
    candidates = list(
        MergeCandidate.objects.filter(pk__in=list(candidate_ids), status=MergeCandidate.Status.OPEN)
    )
    facts = contact_facts(
        itertools.chain.from_iterable((c.contact_a_id, c.contact_b_id) for c in candidates)
    )
    changed = []
    for candidate in candidates:
        result = pair_score(facts[candidate.contact_a_id], facts[candidate.contact_b_id])
        if (candidate.score, candidate.reasons) != (result.score, result.reasons):
            candidate.score, candidate.reasons = result.score, result.reasons
            changed.append(candidate)
    MergeCandidate.objects.bulk_update(changed, ["score", "reasons"])
    return len(changed)


def candidate_dismiss(*, candidates: QuerySet[MergeCandidate], reviewed_by_id: int | None) -> int:
    """Mark open pairs as not duplicates; detection never proposes them again."""
    return candidates.filter(status=MergeCandidate.Status.OPEN).update(
        status=MergeCandidate.Status.DISMISSED,
        reviewed_at=timezone.now(),
        reviewed_by_id=reviewed_by_id,
    )
