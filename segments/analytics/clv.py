"""Purchase histories for BG/NBD from the database, the fit, and stored predictions.

As in the model's literature, repeat purchases are counted per distinct day (UTC), and
recency t_x and age T are whole days between dates (the last purchase's date, and the
calibration end's date, minus the first purchase's date) expressed in the unit asked:
a week is 7 days, so t_x = 10 days is 10/7 weeks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.models import Event
from segments.analytics.bgnbd import (
    BGNBDFitError,
    BGNBDParams,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_p_alive,
)
from segments.models.analytics import ContactPrediction, PredictionParams

Unit = Literal["day", "week"]
UNIT_DAYS: dict[str, int] = {"day": 1, "week": 7}
BATCH_SIZE = 5_000
ProgressCallback = Callable[[int, int], None]  # (done, total)

__all__ = [
    "UNIT_DAYS",
    "BGNBDFitError",
    "PurchaseHistories",
    "clv_fit",
    "clv_predict",
    "purchase_histories",
]


@dataclass
class PurchaseHistories:
    """One entry per customer (a contact with at least one purchase by calibration_end)."""

    calibration_end: dt.date
    unit: Unit
    contact_ids: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]  # repeat purchases: distinct purchase days - 1
    t_x: npt.NDArray[np.float64]  # last purchase date - first purchase date, in `unit`
    T: npt.NDArray[np.float64]  # calibration end date - first purchase date, in `unit`


def _unit_days(unit: str) -> int:
    try:
        return UNIT_DAYS[unit]
    except KeyError:
        raise ValueError(f"unit must be day or week, got {unit!r}") from None


def purchase_histories(*, calibration_end: dt.date, unit: Unit) -> PurchaseHistories:
    """One SQL aggregate over order_completed events up to and including calibration_end
    (a UTC date): per contact, the distinct purchase days, the first and the last."""
    days_per_unit = _unit_days(unit)
    end_exclusive = dt.datetime.combine(
        calibration_end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC
    )
    rows = (
        Event.objects.filter(
            type=Event.ORDER_COMPLETED, occurred_at__lt=end_exclusive, contact__is_erased=False
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=dt.UTC))
        .values("contact_id")
        .annotate(days=Count("day", distinct=True), first=Min("day"), last=Max("day"))
        .order_by("contact_id")
        .values_list("contact_id", "days", "first", "last")
        .iterator(chunk_size=BATCH_SIZE)
    )
    contact_ids: list[int] = []
    days: list[int] = []
    first: list[int] = []
    last: list[int] = []
    for contact_id, n_days, first_day, last_day in rows:
        contact_ids.append(contact_id)
        days.append(n_days)
        first.append(first_day.toordinal())
        last.append(last_day.toordinal())
    first_arr = np.array(first, dtype=np.float64)
    end = float(calibration_end.toordinal())
    return PurchaseHistories(
        calibration_end=calibration_end,
        unit=unit,
        contact_ids=np.array(contact_ids, dtype=np.int64),
        x=np.array(days, dtype=np.float64) - 1.0,
        t_x=(np.array(last, dtype=np.float64) - first_arr) / days_per_unit,
        T=(end - first_arr) / days_per_unit,
    )


def clv_fit(*, calibration_end: dt.date, unit: Unit) -> tuple[BGNBDParams, PurchaseHistories]:
    """Fits BG/NBD by maximum likelihood on purchases up to and including calibration_end."""
    histories = purchase_histories(calibration_end=calibration_end, unit=unit)
    if histories.x.size == 0:
        raise BGNBDFitError(f"no purchases on or before {calibration_end.isoformat()}")
    return bgnbd_fit(histories.x, histories.t_x, histories.T), histories


def clv_predict(
    *,
    params: BGNBDParams,
    histories: PurchaseHistories,
    horizon_days: int | None = None,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Stores P(alive) and expected purchases in the next horizon_days for every customer
    of the fit; contacts that are no longer customers of a fit lose their row. Returns the
    number of predictions written."""
    horizon = int(horizon_days if horizon_days is not None else settings.CLV_HORIZON_DAYS)
    if horizon < 1:
        raise ValueError(f"--horizon-days must be at least 1, got {horizon}")
    now = now or timezone.now()
    t = horizon / _unit_days(histories.unit)
    p_alive = bgnbd_p_alive(params, histories.x, histories.t_x, histories.T)
    expected = bgnbd_expected_purchases(params, t, histories.x, histories.t_x, histories.T)
    stored: PredictionParams = {
        "r": params.r,
        "alpha": params.alpha,
        "a": params.a,
        "b": params.b,
        "log_likelihood": params.log_likelihood,
        "customers": params.customers,
        "unit": histories.unit,
        "calibration_end": histories.calibration_end.isoformat(),
    }
    total = int(histories.contact_ids.size)
    for start in range(0, total, BATCH_SIZE):
        stop = min(start + BATCH_SIZE, total)
        batch = [
            ContactPrediction(
                contact_id=int(histories.contact_ids[i]),
                p_alive=float(p_alive[i]),
                expected_purchases=float(expected[i]),
                horizon_days=horizon,
                params=stored,
                computed_at=now,
            )
            for i in range(start, stop)
        ]
        with transaction.atomic():
            ContactPrediction.objects.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["contact"],
                update_fields=[
                    "p_alive",
                    "expected_purchases",
                    "horizon_days",
                    "params",
                    "computed_at",
                ],
            )
        if progress:
            progress(stop, total)
    ContactPrediction.objects.filter(computed_at__lt=now).delete()
    return total


def clv_refresh(
    *,
    horizon_days: int | None = None,
    unit: Unit = "week",
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[BGNBDParams, int]:
    """Fits on every purchase up to today and stores predictions (the daily task)."""
    now = now or timezone.now()
    params, histories = clv_fit(calibration_end=now.astimezone(dt.UTC).date(), unit=unit)
    written = clv_predict(
        params=params, histories=histories, horizon_days=horizon_days, now=now, progress=progress
    )
    return params, written
