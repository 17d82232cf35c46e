"""Each app's receivers are connected by django.setup() alone, through its AppConfig.ready().

Checked in a fresh interpreter: in the test process some test module may already have
imported a receivers module, which would hide an app that forgot to import its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_APPS = {"crm", "segments", "campaigns", "triggers"}

PROBE = """
import json, sys
import django
from django.db.models.signals import post_migrate
django.setup()
from anymail.signals import tracking
from crm.signals import contact_erased, contact_merged, contact_merging, events_ingested
from segments.signals import membership_changed
signals = {
    "post_migrate": post_migrate,
    "tracking": tracking,
    "contact_erased": contact_erased,
    "contact_merged": contact_merged,
    "contact_merging": contact_merging,
    "events_ingested": events_ingested,
    "membership_changed": membership_changed,
}
json.dump(
    {name: [key[0] for key, *_ in signal.receivers] for name, signal in signals.items()},
    sys.stdout,
)
"""

# Signal -> the dispatch_uids each app's receivers.py connects to it, in the order they run.
EXPECTED = {
    "post_migrate": ["crm.marketers_group_ensure"],
    "tracking": ["campaigns.email_tracking_received"],
    "contact_erased": ["segments.contact_erased", "campaigns.contact_erased_responses"],
    "contact_merged": ["segments.contact_merged"],
    "contact_merging": ["segments.analytics.drop_duplicate_analytics", "segments.contact_merging"],
    "events_ingested": ["segments.events_ingested", "triggers.events_ingested"],
    "membership_changed": ["triggers.membership_changed"],
}


def test_django_setup_connects_every_apps_receivers_in_layer_order() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    connected = json.loads(result.stdout)
    # Django's own apps connect post_migrate receivers too; ours are the ones we name.
    ours = {
        name: [uid for uid in uids if isinstance(uid, str) and uid.split(".")[0] in _APPS]
        for name, uids in connected.items()
    }
    assert ours == EXPECTED
