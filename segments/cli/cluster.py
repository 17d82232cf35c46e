"""`segments cluster [--k N | --k-range 2-8]`: K-means clusters, described and saved as
segments."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from segments.analytics.clustering import DEFAULT_SEED, ClusteringError, clustering_run
from segments.analytics.segments_refresh import analytics_segments_refresh


def _k_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        if not sep:
            raise ValueError
        return int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 2-8") from None


HELP = "Cluster contacts with K-means, describe each cluster and save it as a segment."


def add_arguments(parser: CommandParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--k", type=int, default=None, help="number of clusters")
    choice.add_argument(
        "--k-range",
        type=_k_range,
        default=(2, 8),
        help="choose k with the best silhouette in this range (default 2-8)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--period-days", type=int, default=None, help="events of the last N days (default 365)"
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    out = command.stdout
    try:
        result = clustering_run(
            k=options["k"],
            k_range=options["k_range"],
            seed=options["seed"],
            period_days=options["period_days"],
            progress=lambda message: out.write(f"  {message}"),
        )
    except ClusteringError as exc:
        raise CommandError(str(exc)) from exc
    run = result.run
    out.write(
        f"{run.k} clusters of {run.contacts:,} contacts (silhouette {run.silhouette:.3f}, "
        f"seed {run.seed}, run #{run.pk}):"
    )
    for entry in run.descriptions:
        out.write("")
        out.write(
            f"Cluster {entry['cluster']}: {entry['label']} — {entry['size']:,} contacts "
            f"({entry['share']:.0%}), segment {entry['segment_slug']}"
        )
        out.write(f"  {entry['description']}")
    refreshed = analytics_segments_refresh(types={"cluster"})
    out.write("")
    out.write(f"Refreshed {len(refreshed)} segment(s) that use cluster conditions.")
