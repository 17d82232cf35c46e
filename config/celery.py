"""The Celery app. Workers and beat start with `celery -A config worker|beat`."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cadence")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "dispatch", "evaluation", "webhooks")]
app.autodiscover_tasks()

if str(app.conf.broker_url).startswith("sqla+"):
    # The SQL transport polls its table (every second by default, and its transport options
    # all go to create_engine); a shorter poll keeps event-to-send latency low.
    from kombu.transport import sqlalchemy as sqla_transport

    sqla_transport.Transport.polling_interval = 0.1
