"""`python manage.py devtools bench --scale small|medium|large`: load synthetic data into an empty
database and measure the pipeline, each figure beside a baseline measured in the same run.
`make bench` gives it a fresh SQLite database under var/bench/ (or DATABASE_URL)."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from crm.models import Contact
from devtools.bench import journeys, pipeline, queries
from devtools.bench.data import SCALES, Scale, dataset_load
from devtools.bench.results import Progress, Result, results_table, results_write
from devtools.processes import web_server

MEASUREMENTS = (
    "ingest",
    "segment_refresh",
    "trigger_evaluation",
    "event_to_queued_latency",
    "dormancy_sweep",
    "send_fanout",
    "ab_report",
    "worker_memory",
    "journey_advance",
    "journey_due_lookup",
)


HELP = "Benchmarks with baselines measured in the same run (docs/performance.md)."


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASUREMENTS,
        help="Run only this measurement (repeatable); data is loaded either way.",
    )
    parser.add_argument(
        "--output",
        default="",
        help="Where results.json goes (default: VAR_DIR/results.json, i.e. var/bench/).",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    scale = SCALES[options["scale"]]
    # Measured as deployed: with DEBUG on, every statement is also formatted for the query
    # log, which costs more than some statements themselves.
    settings.DEBUG = False
    chosen = set(options["only"] or MEASUREMENTS)
    if Contact.objects.exists():
        raise CommandError(
            "bench needs an empty, migrated database: `make bench` creates a fresh one "
            "under var/bench/; with DATABASE_URL, name an empty database."
        )
    progress = Progress(command.stdout)  # type: ignore[arg-type]
    logs = Path(settings.VAR_DIR) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    output = Path(options["output"] or Path(settings.VAR_DIR) / "results.json")
    progress.say(
        f"Cadence bench, scale {options['scale']}: {scale.contacts:,} contacts, "
        f"{scale.events:,} events, on {connection.vendor} "
        f"(Python {platform.python_version()}, {_cores()} cores)"
    )
    started = time.monotonic()
    dataset = dataset_load(scale=scale, progress=progress)
    progress.say(
        f"Data loaded in {time.monotonic() - started:.0f}s "
        f"({dataset.dormant_share:.0%} of contacts dormant for 60+ days)."
    )
    results: list[Result] = []

    def record(result: Result) -> None:
        results.append(result)
        progress.say(results_table([result]).splitlines()[-1])
        results_write(results, output)

    key = pipeline.api_key()
    if chosen & {"ingest", "event_to_queued_latency"}:
        with web_server(log=logs / "web.log") as base_url:
            if "ingest" in chosen:
                record(
                    pipeline.measure_ingest(
                        scale=scale,
                        dataset=dataset,
                        base_url=base_url,
                        key=key,
                        progress=progress,
                    )
                )
            if "event_to_queued_latency" in chosen:
                record(
                    pipeline.measure_latency(
                        scale=scale,
                        dataset=dataset,
                        base_url=base_url,
                        key=key,
                        progress=progress,
                        logs=logs,
                    )
                )
    if "segment_refresh" in chosen:
        record(queries.measure_segment_refresh(scale=scale, progress=progress))
    if "trigger_evaluation" in chosen or "worker_memory" in chosen:
        record(queries.measure_trigger_evaluation(scale=scale, dataset=dataset, progress=progress))
    if "dormancy_sweep" in chosen:
        record(queries.measure_dormancy_sweep(scale=scale, progress=progress))
    if "send_fanout" in chosen:
        record(pipeline.measure_fanout(scale=scale, dataset=dataset, progress=progress, logs=logs))
    if "ab_report" in chosen:
        record(queries.measure_ab_report(scale=scale, dataset=dataset, progress=progress))
    if "worker_memory" in chosen:
        record(queries.measure_worker_memory(scale=scale, dataset=dataset, progress=progress))
    _journeys(chosen=chosen, scale=scale, progress=progress, record=record)
    results = [r for r in results if r.name in chosen]
    results_write(results, output)
    progress.say("")
    progress.say(results_table(results))
    missed = [r.name for r in results if r.met is False]
    progress.say("")
    progress.say(f"Total {time.monotonic() - started:.0f}s. Results in {output}.")
    progress.say(f"Goals not met: {', '.join(missed)}" if missed else "Every goal met.")


def _journeys(
    *, chosen: set[str], scale: Scale, progress: Progress, record: Callable[[Result], None]
) -> None:
    if "journey_advance" in chosen:
        record(journeys.measure_advance(scale=scale, progress=progress))
    # The million waiting enrollments go in last: no other measurement reads around them.
    if "journey_due_lookup" in chosen:
        record(journeys.measure_due_lookup(scale=scale, progress=progress))


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))
