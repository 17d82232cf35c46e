"""Print the data-quality report: the same figures as the admin page."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from crm.models import ImportRun, MergeCandidate
from crm.selectors_quality import ISSUES, quality_counts

HELP = "Print how many contacts are unreachable, invalid, incomplete or likely duplicates."


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    counts = quality_counts()
    total = counts["total"]
    command.stdout.write(f"{total:,} live contacts")
    for group in ("invalid", "incomplete"):
        command.stdout.write(f"{group}:")
        for key, issue in ISSUES.items():
            if issue.group == group:
                share = f"{counts[key] / total:6.1%}" if total else "     -"
                command.stdout.write(f"  {counts[key]:>8,} {share}  {issue.label}")
    open_pairs = MergeCandidate.objects.filter(status=MergeCandidate.Status.OPEN).count()
    command.stdout.write(f"likely duplicates waiting for review: {open_pairs:,}")
    last = ImportRun.objects.order_by("-pk").first()
    if last is not None:
        command.stdout.write(
            f"last import ({last.kind}, {last.filename}): {last.rows_rejected:,} of "
            f"{last.rows_read:,} rows rejected; report at {last.report_path}"
        )
