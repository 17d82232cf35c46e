"""`segments fit-clv --calibration-end DATE --unit week|day [--json] [--horizon-days N]`:
fit BG/NBD on purchases up to and including that date.

With --json only the fit is printed, as {"r", "alpha", "a", "b", "log_likelihood",
"customers"}, and nothing is stored; data that cannot be fitted is an error. Without it,
every customer's P(alive) and expected purchases in the next --horizon-days days are stored
for segment conditions and the attempt is recorded (PredictionFit); data that cannot identify
the model prints the reason, stores nothing and exits 0.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from segments.analytics.bgnbd import BGNBDFitError
from segments.analytics.clv import clv_fit, clv_run, prediction_fit_summary
from segments.analytics.segments_refresh import analytics_segments_refresh
from segments.models.analytics import PredictionFit

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
    if options["json"]:
        try:
            params, _ = clv_fit(calibration_end=calibration_end, unit=unit)
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
        out.write(json.dumps(fitted))
        return

    def progress(done: int, total: int) -> None:
        out.write(f"  saved {done:,}/{total:,} predictions ({done / total:.0%})")

    try:
        fit = clv_run(
            calibration_end=calibration_end,
            unit=unit,
            horizon_days=options["horizon_days"],
            progress=progress,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    out.write(prediction_fit_summary(fit))
    if fit.status != PredictionFit.Status.FITTED:
        out.write("No predictions stored; the predictions of the last successful fit are kept.")
        return
    out.write(f"Stored P(alive) and expected purchases for {fit.predictions:,} customers.")
    refreshed = analytics_segments_refresh(types={"prediction"})
    if refreshed:
        out.write(f"Refreshed {len(refreshed)} segment(s) that use prediction conditions.")
