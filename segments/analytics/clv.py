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
from django.db.models import Count, Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.models import Event
from segments.analytics.bgnbd import (
    MIN_REPEAT_BUYERS,
    BGNBDFitError,
    BGNBDNotIdentified,
    BGNBDParams,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_p_alive,
)
from segments.analytics.storing import contact_rows_upsert
from segments.models.analytics import ContactPrediction, PredictionFit, PredictionParams

Unit = Literal["day", "week"]
UNIT_DAYS: dict[str, int] = {"day": 1, "week": 7}
BATCH_SIZE = 5_000
ProgressCallback = Callable[[int, int], None]  # (done, total)

__all__ = [
    "UNIT_DAYS",
    "BGNBDFitError",
    "BGNBDNotIdentified",
    "PurchaseHistories",
    "clv_fit",
    "clv_predict",
    "clv_refresh",
    "clv_run",
    "prediction_fit_summary",
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


def _fit(
    histories: PurchaseHistories, *, min_repeat_buyers: int = MIN_REPEAT_BUYERS
) -> BGNBDParams:
    if histories.x.size == 0:
        raise BGNBDFitError(f"no purchases on or before {histories.calibration_end.isoformat()}")
    return bgnbd_fit(histories.x, histories.t_x, histories.T, min_repeat_buyers=min_repeat_buyers)


def clv_fit(
    *, calibration_end: dt.date, unit: Unit, min_repeat_buyers: int = MIN_REPEAT_BUYERS
) -> tuple[BGNBDParams, PurchaseHistories]:
    """Fits BG/NBD by maximum likelihood on purchases up to and including calibration_end."""
    histories = purchase_histories(calibration_end=calibration_end, unit=unit)
    return _fit(histories, min_repeat_buyers=min_repeat_buyers), histories


def _stored_params(params: BGNBDParams, histories: PurchaseHistories) -> PredictionParams:
    return {
        "r": params.r,
        "alpha": params.alpha,
        "a": params.a,
        "b": params.b,
        "log_likelihood": params.log_likelihood,
        "customers": params.customers,
        "unit": histories.unit,
        "calibration_end": histories.calibration_end.isoformat(),
    }


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
    with np.errstate(all="ignore"):
        p_alive = bgnbd_p_alive(params, histories.x, histories.t_x, histories.T)
        expected = bgnbd_expected_purchases(params, t, histories.x, histories.t_x, histories.T)
    broken = int(np.count_nonzero(~(np.isfinite(p_alive) & np.isfinite(expected))))
    if broken:
        # Checked before anything is written: a NaN would be NULL in the database.
        raise BGNBDNotIdentified(
            f"the fit gives predictions that are not numbers for {broken:,} of "
            f"{p_alive.size:,} customers"
        )
    stored = _stored_params(params, histories)
    total = int(histories.contact_ids.size)
    contact_rows_upsert(
        model=ContactPrediction,
        row=lambda i: ContactPrediction(
            contact_id=int(histories.contact_ids[i]),
            p_alive=float(p_alive[i]),
            expected_purchases=float(expected[i]),
            horizon_days=horizon,
            params=stored,
            computed_at=now,
        ),
        total=total,
        update_fields=["p_alive", "expected_purchases", "horizon_days", "params", "computed_at"],
        batch_size=BATCH_SIZE,
        progress=progress,
    )
    ContactPrediction.objects.filter(computed_at__lt=now).delete()
    return total


def clv_run(
    *,
    calibration_end: dt.date,
    unit: Unit = "week",
    horizon_days: int | None = None,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> PredictionFit:
    """Fits, stores the predictions and records the attempt as a PredictionFit.

    Data that cannot identify the model (no purchases, too few repeat buyers, an estimate at
    the edge of the search, predictions that are not numbers) is a state, not an error: the
    record says `not_fitted` with the reason, nothing is written and the predictions of the
    last successful fit stay as they are. Any other error is recorded as `failed` and raised.
    """
    now = now or timezone.now()
    horizon = int(horizon_days if horizon_days is not None else settings.CLV_HORIZON_DAYS)
    if horizon < 1:
        raise ValueError(f"--horizon-days must be at least 1, got {horizon}")
    histories = purchase_histories(calibration_end=calibration_end, unit=unit)
    record = PredictionFit(
        calibration_end=calibration_end,
        unit=unit,
        customers=int(histories.x.size),
        repeat_buyers=int(np.count_nonzero(histories.x > 0)),
        created_at=now,
    )
    try:
        params = _fit(histories)
        written = clv_predict(
            params=params, histories=histories, horizon_days=horizon, now=now, progress=progress
        )
    except BGNBDFitError as exc:
        record.status, record.reason = PredictionFit.Status.NOT_FITTED, str(exc)
        record.save()
        return record
    except Exception as exc:
        record.status, record.reason = PredictionFit.Status.FAILED, f"{type(exc).__name__}: {exc}"
        record.save()
        raise
    record.status = PredictionFit.Status.FITTED
    record.params = dict(_stored_params(params, histories))
    record.predictions = written
    record.save()
    return record


def clv_refresh(
    *,
    horizon_days: int | None = None,
    unit: Unit = "week",
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> PredictionFit:
    """Fits on every purchase up to today and stores predictions (the daily task)."""
    now = now or timezone.now()
    return clv_run(
        calibration_end=now.astimezone(dt.UTC).date(),
        unit=unit,
        horizon_days=horizon_days,
        now=now,
        progress=progress,
    )


def prediction_fit_summary(fit: PredictionFit) -> str:
    """One line for a person: the fitted parameters, or why there are none."""
    if fit.status == PredictionFit.Status.FITTED:
        p = fit.params
        return (
            f"predicted purchases: fitted r={p['r']:.4f} alpha={p['alpha']:.4f} "
            f"a={p['a']:.4f} b={p['b']:.4f} (log-likelihood {p['log_likelihood']:.2f}, "
            f"{fit.customers:,} customers, {fit.repeat_buyers:,} repeat buyers)"
        )
    return f"predicted purchases: not fitted — {fit.reason}"
