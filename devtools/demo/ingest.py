"""Chapter 2 of the scripted run: the demo events sent to the API over HTTP the way a
client should send a backfill, then the first batch replayed."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from django.core.management import call_command
from django.core.management.base import OutputWrapper

from devtools.demo.data import demo_events_shifted
from devtools.demo.report import heading
from devtools.demo.server import post_json, wait_idle


class _CaptureLastLine(OutputWrapper):
    """Captures a command's output to read the key `crm create-api-key` prints last."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        super().__init__(self._buffer)

    @property
    def last_line(self) -> str:
        return self._buffer.getvalue().strip().splitlines()[-1].strip()


def _requests_by_contact(events: list[dict[str, Any]], *, limit: int) -> list[tuple[int, int]]:
    """(start, end) slices of at most `limit` events (unless one person has more), never
    splitting one person's events (sorted in place by person, keeping their order): a
    backfill sent the way a client
    should, so the worker never judges someone on half their history (a person whose old
    visits came in one request and recent ones in the next would look dormant between)."""
    events.sort(key=lambda event: sorted(event["contact"].items()))
    runs: list[tuple[int, int]] = []  # each person's events
    for index, event in enumerate(events):
        if runs and events[runs[-1][0]]["contact"] == event["contact"]:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    slices: list[tuple[int, int]] = []
    for run_start, run_end in runs:
        if slices and run_end - slices[-1][0] <= limit:
            slices[-1] = (slices[-1][0], run_end)
        else:
            slices.append((run_start, run_end))
    return slices


def _api_event(row: dict[str, str]) -> dict[str, Any]:
    contact = {key: row[key] for key in ("email", "phone", "external_id") if row.get(key)}
    event: dict[str, Any] = {
        "id": row["id"],
        "type": row["type"],
        "occurred_at": row["occurred_at"],
        "contact": contact,
        "properties": {
            key.removeprefix("prop_").removeprefix("properties."): value
            for key, value in row.items()
            if (key.startswith(("prop_", "properties."))) and value
        },
    }
    if row.get("value"):
        event["value"] = row["value"]
        event["currency"] = row.get("currency") or "EUR"
    return event


def _api_key() -> str:
    out = _CaptureLastLine()
    call_command("crm", "create-api-key", "demo", stdout=out)
    return out.last_line


def _send_all(
    events: list[dict[str, Any]], *, url: str, key: str
) -> tuple[Counter[str], list[str]]:
    """Every event in requests of up to 500; the count per outcome and each rejection."""
    statuses: Counter[str] = Counter()
    rejected: list[str] = []
    for start, end in _requests_by_contact(events, limit=500):
        status, body = post_json(url, key, {"events": events[start:end]})
        if status != 200:
            raise RuntimeError(f"POST /api/v1/events answered {status}: {body}")
        for result in body["results"]:
            statuses[result["status"]] += 1
            if result["status"] == "rejected":
                rejected.append(f"events[{start + result['index']}]: {result['error']}")
    return statuses, rejected


def demo_ingest(*, stdout: OutputWrapper, base_url: str) -> None:
    heading(stdout, "2. Ingest events through the API over HTTP (the worker evaluates them)")
    key = _api_key()
    events = [_api_event(row) for row in demo_events_shifted()]
    url = f"{base_url}/api/v1/events"
    statuses, rejected = _send_all(events, url=url, key=key)
    _, replay = post_json(url, key, {"events": events[:500]})
    stdout.write(
        f"{len(events)} events: accepted {statuses['accepted']}, duplicate "
        f"{statuses['duplicate']}, rejected {statuses['rejected']}\n"
    )
    for line in rejected[:5]:
        stdout.write(f"  {line}\n")
    replayed = Counter(result["status"] for result in replay["results"])
    stdout.write(f"replaying the first batch: {dict(replayed)} (replays are harmless)\n")
    wait_idle(stdout=stdout)
