"""Merge the open merge candidates that score at least --min-score."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from crm.cli.find_duplicates import add_detection_arguments
from crm.models import MergeCandidate
from crm.services.duplicates.detection import duplicates_find
from crm.services.merge import ContactMergeError, candidate_merge

BATCH = 200


HELP = "Merge the open merge candidates scoring at least --min-score."
DESCRIPTION = (
    "Merge every open merge candidate scoring at least --min-score (0-100), best first. "
    "Of each pair the more complete contact survives (the older when equal); the other's "
    "events, consent entries and every other row move to it, its addresses become "
    "aliases, and a ContactMerge audit keeps its profile. With --find, look for "
    "candidates first (as `crm find-duplicates` does). --dry-run lists what would merge."
)


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--min-score",
        type=float,
        required=True,
        help="Merge only candidates scoring at least this, e.g. 90.",
    )
    parser.add_argument(
        "--find", action="store_true", help="Look for new candidates before merging."
    )
    add_detection_arguments(parser, min_score_flag="--find-min-score")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="List the pairs that would merge; change nothing.",
    )
    parser.add_argument("--limit", type=int, default=None, help="Stop after this many merges.")
    parser.add_argument(
        "--merged-by",
        default="crm merge-duplicates",
        help="Who the audit names as having merged (default: crm merge-duplicates).",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    min_score: float = options["min_score"]
    if not 0 <= min_score <= 100:
        raise CommandError(f"--min-score {min_score:g} is not between 0 and 100")
    if options["find"]:
        duplicates_find(
            min_score=options["find_min_score"],
            max_block=options["max_block"],
            batch_size=options["batch_size"],
            progress=command.stdout.write,
        )
    eligible = MergeCandidate.objects.filter(
        status=MergeCandidate.Status.OPEN, score__gte=min_score
    )
    total = eligible.count()
    command.stdout.write(f"{total} open candidates score {min_score:g} or more.")
    if options["dry_run"]:
        for candidate in eligible.order_by("-score", "pk").iterator(chunk_size=BATCH):
            command.stdout.write(
                f"  would merge #{candidate.contact_a_id} and #{candidate.contact_b_id} "
                f"(score {candidate.score:g})"
            )
        return
    merged, failed = _merge_all(
        command, eligible, total=total, limit=options["limit"], merged_by=options["merged_by"]
    )
    command.stdout.write(command.style.SUCCESS(f"Done: {merged} merged, {len(failed)} failed."))
    if failed:
        raise CommandError(f"{len(failed)} merges failed: candidates {sorted(failed)}")


def _merge_all(
    command: BaseCommand,
    eligible: QuerySet[MergeCandidate],
    *,
    total: int,
    limit: int | None,
    merged_by: str,
) -> tuple[int, set[int]]:
    merged = 0
    failed: set[int] = set()
    done = False
    while not done:
        # A merge deletes its own candidate and may re-point others, so read afresh.
        batch = list(
            eligible.exclude(pk__in=failed)
            .order_by("-score", "pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        if not batch:
            break
        for pk in batch:
            if limit is not None and merged >= limit:
                done = True
                break
            score = eligible.filter(pk=pk).values_list("score", flat=True).first()
            if score is None:
                continue  # merged away, re-pointed or re-scored by an earlier merge
            try:
                audit = candidate_merge(candidate_id=pk, merged_by=merged_by)
            except ContactMergeError as exc:
                failed.add(pk)
                command.stderr.write(f"candidate {pk}: {exc}")
                continue
            if audit is None:
                continue
            merged += 1
            command.stdout.write(
                f"[{merged}/{total}] merged contact #{audit.duplicate_snapshot['id']} into "
                f"#{audit.survivor_id} (score {score:g})"
            )
    return merged, failed
