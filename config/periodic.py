"""Every periodic task the system needs, declared in code.

`python manage.py crm setup-periodic-tasks` writes these into django-celery-beat's tables
(idempotently) so that beat's DatabaseScheduler runs them and marketers can see them in
admin. Task names are strings so this layer imports no app.
"""

from __future__ import annotations

from typing import TypedDict


class PeriodicTaskSpec(TypedDict):
    name: str  # unique, shown in admin
    task: str  # the Celery task's dotted name
    # A crontab ("minute hour day_of_month month_of_year day_of_week") or every N seconds.
    crontab: str | None
    every_seconds: int | None
    description: str


PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    {
        "name": "crm: expire unconfirmed double opt-in requests",
        "task": "crm.tasks.optin_expire_pending",
        "crontab": "17 * * * *",
        "every_seconds": None,
        "description": "Expires subscribe requests whose confirmation link was never used.",
    },
    {
        "name": "segments: refresh segments that change with the clock",
        "task": "segments.tasks.segments_refresh_clock_dependent",
        "crontab": None,
        "every_seconds": 900,
        "description": "Behaviour windows slide and days-since conditions age: refreshes the "
        "segments that use them, and drains contacts queued by new events.",
    },
    {
        "name": "segments: refresh every segment and record daily sizes",
        "task": "segments.tasks.segments_refresh_all",
        "crontab": "41 3 * * *",
        "every_seconds": None,
        "description": "A full refresh of every active segment (catches attribute and consent "
        "changes) and the daily size snapshot behind the size chart.",
    },
    {
        "name": "segments: daily analytics (lifecycle, RFM, purchase predictions)",
        "task": "segments.analytics.tasks.analytics_refresh_daily",
        "crontab": "23 2 * * *",
        "every_seconds": None,
        "description": "Recomputes lifecycle stages, RFM scores and BG/NBD predictions, then "
        "refreshes the segments whose conditions use them.",
    },
    {
        "name": "campaigns: enqueue deferred deliveries that are due",
        "task": "campaigns.tasks.deliveries_enqueue_due",
        "crontab": None,
        "every_seconds": 60,
        "description": "Deliveries waiting for local send time, quiet hours, a frequency cap "
        "or a retry backoff are enqueued in batches once due; rows left by a lost worker are "
        "queued again (never handed to the provider) or marked uncertain.",
    },
    {
        "name": "campaigns: start scheduled broadcasts and recurring occurrences",
        "task": "campaigns.tasks.campaigns_start_due",
        # On the minute, not every 60 s: an interval drifts later tick by tick, and the
        # tick that slips from :59.9 to :00.1 would leave a whole minute without a sweep.
        "crontab": "* * * * *",
        "every_seconds": None,
        "description": "Launches broadcasts whose scheduled time has passed, and each recurring "
        "campaign's latest crontab slot once (occurrence = the slot's UTC date-time).",
    },
    {
        "name": "triggers: sweep rules whose conditions move with the clock",
        "task": "triggers.tasks.triggers_sweep",
        "crontab": None,
        "every_seconds": 300,
        "description": "Dormancy, days since purchase, sliding windows and local time: checks "
        "the contacts that can match now (pre-filtered in SQL) and records firings once.",
    },
    {
        "name": "campaigns: decide A/B tests at their horizon",
        "task": "campaigns.tasks.ab_decide_due",
        "crontab": None,
        "every_seconds": 300,
        "description": "A/B tests whose declared horizon (end time, or sample per variant plus "
        "the attribution window) is reached are decided once: the winner, or the default "
        "variant when inconclusive, is recorded and sent to the rest of the audience.",
    },
    {
        "name": "journeys: advance due enrollments",
        "task": "journeys.tasks.journeys_advance_due",
        "crontab": None,
        "every_seconds": 15,
        "description": "Claims the enrollments whose wait is over (or that just moved on) in "
        "batches and runs their steps once each: waits, branches, splits, sends, actions.",
    },
    {
        "name": "journeys: convert enrollments whose goal was reached",
        "task": "journeys.tasks.journeys_goals_check",
        "crontab": None,
        "every_seconds": 300,
        "description": "Goal events are checked on ingest; this sweep converts the active "
        "enrollments whose goal event arrived while no worker ran.",
    },
]
