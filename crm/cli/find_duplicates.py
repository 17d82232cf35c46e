"""Propose likely duplicate contacts for review (admin: CRM > Merge candidates)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crm.services.duplicates.detection import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BLOCK,
    DEFAULT_MIN_SCORE,
    duplicates_find,
)


def add_detection_arguments(parser: CommandParser, *, min_score_flag: str) -> None:
    parser.add_argument(
        min_score_flag,
        dest="find_min_score",
        metavar="N",
        type=float,
        default=DEFAULT_MIN_SCORE,
        help=f"Record pairs scoring at least this (0-100, default {DEFAULT_MIN_SCORE:g}).",
    )
    parser.add_argument(
        "--max-block",
        type=int,
        default=DEFAULT_MAX_BLOCK,
        help=(
            "Skip groups of more contacts than this sharing one key, e.g. a very common "
            f"surname and initial (default {DEFAULT_MAX_BLOCK})."
        ),
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"Pairs scored and saved per batch (default {DEFAULT_BATCH_SIZE}).",
    )


HELP = "Propose likely duplicate contacts as merge candidates for review."
DESCRIPTION = (
    "Find likely duplicate contacts and record them as open merge candidates for review "
    "in admin. Contacts are grouped in SQL by phone number, email local part, last name "
    "and first initial, external id and former addresses (aliases); only contacts "
    "sharing a group are compared, by name similarity (rapidfuzz) and the evidence they "
    "share. Safe to run again: open candidates are re-scored and pairs marked 'not a "
    "duplicate' are never proposed again. Merge them with `crm merge-duplicates --min-score N` "
    "or in admin."
)


def add_arguments(parser: CommandParser) -> None:
    add_detection_arguments(parser, min_score_flag="--min-score")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    stats = duplicates_find(
        min_score=options["find_min_score"],
        max_block=options["max_block"],
        batch_size=options["batch_size"],
        progress=command.stdout.write,
    )
    command.stdout.write(command.style.SUCCESS(f"Done: {stats.created} new merge candidates."))
