"""Celery tasks for segment analytics: load, call the service, done. segments/tasks.py
imports this module so that Celery's autodiscovery (which imports `<app>.tasks`) finds them."""

from __future__ import annotations

import logging

from core.tasks import shared_task
from segments.analytics.clustering import clustering_run
from segments.analytics.clv import clv_refresh
from segments.analytics.lifecycle import lifecycle_refresh
from segments.analytics.rfm import rfm_compute
from segments.analytics.segments_refresh import analytics_segments_refresh
from segments.models.analytics import PredictionFit

logger = logging.getLogger(__name__)


@shared_task
def lifecycle_refresh_task() -> int:
    return lifecycle_refresh().changed


@shared_task
def rfm_compute_task(period_days: int | None = None) -> int:
    return rfm_compute(period_days=period_days).scored


@shared_task
def clv_refresh_task(horizon_days: int | None = None) -> int:
    fit = clv_refresh(horizon_days=horizon_days)
    if fit.status != PredictionFit.Status.FITTED:
        # Too few repeat buyers yet is a state of the shop, recorded for admin, not a failure.
        logger.warning("purchase predictions not refreshed: %s", fit.reason)
    return fit.predictions


@shared_task
def clustering_run_task(k: int | None = None, seed: int = 42) -> int:
    run = clustering_run(k=k, seed=seed).run
    analytics_segments_refresh(types={"cluster"})
    return run.pk


@shared_task
def analytics_refresh_daily() -> dict[str, int]:
    """Lifecycle stages, RFM scores and purchase predictions, then the segments that use
    them. Each step runs even if an earlier one failed; a failure is raised at the end."""
    done: dict[str, int] = {}
    failures: list[BaseException] = []
    steps = (
        ("lifecycle", lifecycle_refresh_task),
        ("rfm", rfm_compute_task),
        ("predictions", clv_refresh_task),
    )
    for name, task in steps:
        try:
            done[name] = int(task())
        except Exception as exc:
            logger.exception("daily analytics: %s failed", name)
            failures.append(exc)
    done["segments"] = len(analytics_segments_refresh())
    if failures:
        raise failures[0]
    return done
