"""`segments fit-clv --calibration-end DATE --unit week|day [--json] [--horizon-days N]`:
fit BG/NBD on purchases up to and including that date.

With --json only the fit is printed, as {"r", "alpha", "a", "b", "log_likelihood",
"customers"}, and nothing is stored. Without it, every customer's P(alive) and expected
purchases in the next --horizon-days days are stored for segment conditions.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from segments.analytics.bgnbd import BGNBDFitError
from segments.analytics.clv import clv_fit, clv_predict
from segments.analytics.segments_refresh import analytics_segments_refresh

HELP = "Fit the BG/NBD purchase model; store P(alive) and expected purchases per customer."


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--calibration-end {text!r} is not a date like 2026-03-31") from None


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--calibration-end",
        default=None,
        metavar="DATE",
        help="fit on purchases up to and including this UTC date (default: today)",
    )
    parser.add_argument("--unit", choices=("week", "day"), default="week", help="time unit")
    parser.add_argument(
        "--json", action="store_true", help="print only the fitted parameters as JSON"
    )
    parser.add_argument(
        "--horizon-days",
        type=int,
        default=None,
        help=f"predict purchases in the next N days (default {settings.CLV_HORIZON_DAYS})",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    raw_end = options["calibration_end"]
    calibration_end = _date(raw_end) if raw_end else timezone.now().astimezone(dt.UTC).date()
    unit = options["unit"]
    out = command.stdout
    if not options["json"]:
        out.write(f"Fitting BG/NBD on purchases up to {calibration_end} (unit: {unit})...")
    try:
        params, histories = clv_fit(calibration_end=calibration_end, unit=unit)
    except BGNBDFitError as exc:
        raise CommandError(str(exc)) from exc
    fitted = {
        "r": params.r,
        "alpha": params.alpha,
        "a": params.a,
        "b": params.b,
        "log_likelihood": params.log_likelihood,
        "customers": params.customers,
    }
    if options["json"]:
        out.write(json.dumps(fitted))
        return
    out.write(
        f"r={params.r:.4f} alpha={params.alpha:.4f} a={params.a:.4f} b={params.b:.4f} "
        f"(log-likelihood {params.log_likelihood:.2f}, {params.customers:,} customers)"
    )

    def progress(done: int, total: int) -> None:
        out.write(f"  saved {done:,}/{total:,} predictions ({done / total:.0%})")

    try:
        written = clv_predict(
            params=params,
            histories=histories,
            horizon_days=options["horizon_days"],
            progress=progress,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    out.write(f"Stored P(alive) and expected purchases for {written:,} customers.")
    refreshed = analytics_segments_refresh(types={"prediction"})
    if refreshed:
        out.write(f"Refreshed {len(refreshed)} segment(s) that use prediction conditions.")
