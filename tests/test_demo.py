"""`make demo` runs the main job end to end on the embedded default and shows it working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.worker
def test_the_demo_shows_the_whole_flow_from_import_to_a_journey(tmp_path: Path) -> None:
    # Always the embedded default, whatever database and broker this test run uses.
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        VAR_DIR=str(tmp_path / "var"),
        TWILIO_AUTH_TOKEN="demo-twilio-auth-token",
        WEBHOOK_SECRET="demo:demo-webhook-secret",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "devtools", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "rejected 5" in out and "second run of the same file: created 0, updated 0" in out
    assert "658 events: accepted 658" in out and "{'duplicate': 500}" in out
    assert "merged priya.patel@exmaple.com into priya.patel@example.com" in out
    assert "browse-abandonment: 6 firings {'done': 6}" in out
    assert "win-back: 8 firings {'done': 8}" in out
    assert "november-picks is done" in out
    assert "predicted purchases: not fitted — the data do not identify the model" in out
    assert "now email marketing withdrawn (source one_click)" in out
    assert "suppressed: True; now email marketing withdrawn (source provider_bounce)" in out
    assert "now sms marketing withdrawn (source sms_keyword)" in out
    assert "reminder to jose.garcia@example.es: skipped (no_consent)" in out
    assert "reminder to xiaoming.wang@example.cn: skipped (suppressed)" in out
    assert "before the horizon: Interim, do not act" in out
    assert "decision: A variant won: B beats holdout on conversion" in out
    assert "the other 60 % got variant B" in out
    # The journey: the six shoppers with three views entered, two bought on the way (the
    # goal), the other four moved through the cool-off and the branch to the email.
    assert "browse-follow-up v1: enrolled 6" in out
    assert "converted 2 (EUR 85.00) on the goal order_completed" in out
    assert re.search(r"bought\s+branch\s+4\s+0\s+4", out)
    assert re.search(r"email-1\s+send\s+4\s", out)
    emails = list((tmp_path / "var" / "outbox" / "email").glob("*.eml"))
    assert len(emails) > 30
    texts = [path.read_text(errors="replace") for path in emails]
    [abandonment] = [text for text in texts if "Subject: Still thinking it over, Sakura?" in text]
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in abandonment
