"""Reading the step ledger for a group of enrollments at one step."""

from __future__ import annotations

from typing import Any

from journeys.engine.types import Row
from journeys.models import StepRun

# (ledger row pk, status, outcome)
Run = tuple[int, str, dict[str, Any]]


def ledger_runs(rows: list[Row], step_id: str) -> dict[int, Run]:
    """{enrollment id: its ledger row for this visit to `step_id`}, in one query."""
    wanted = {(row.pk, row.sequence) for row in rows}
    runs = StepRun.objects.filter(
        enrollment_id__in=[row.pk for row in rows], step_id=step_id
    ).values_list("enrollment_id", "sequence", "pk", "status", "outcome")
    return {
        enrollment_id: (pk, status, outcome)
        for enrollment_id, sequence, pk, status, outcome in runs
        if (enrollment_id, sequence) in wanted
    }
