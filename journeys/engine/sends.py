"""The send step, through the campaigns' own dispatch: the delivery is created here (one
bulk insert per campaign for the whole group, occurrence "journey-<enrollment>-<step>-
<sequence>", so a retry delivers nothing twice) and consent, suppression, quiet hours and
caps are checked by dispatch's claim at send time. The enrollment holds at the step (its
ledger row "running", with the delivery id) until the delivery is final; a deferred one
(quiet hours, a cap) keeps it there until a little after the delivery's `not_before`.

The fallback campaign is chosen as the rule action chooses it: a contact without an address
or consent for the first campaign's channel and purpose gets the fallback."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from typing import Any

from campaigns.models import Campaign, Delivery
from campaigns.services.launch import campaign_deliver_to_contacts
from crm.models import Channel, ConsentRecord, Contact
from crm.selectors import consent_current
from journeys.engine.ledger import Run, ledger_runs
from journeys.engine.types import Context, Result, Row, Step, VersionInfo
from journeys.models import StepRun

DStatus = Delivery.Status
FINAL = frozenset(
    {DStatus.SENT, DStatus.DELIVERED, DStatus.FAILED, DStatus.SKIPPED, DStatus.UNCERTAIN}
)
OCCURRENCE_LENGTH = Delivery._meta.get_field("occurrence").max_length or 100
# How often a held send is looked at again while its delivery is queued or sending.
HOLD_POLL = dt.timedelta(seconds=30)
# After a deferred delivery's not_before: time for dispatch to send it.
DEFER_GRACE = dt.timedelta(seconds=30)


def step_occurrence(row: Row) -> str:
    """The delivery's occurrence for this visit to the step, within the column's 100
    characters (a long step id is replaced by a digest of it)."""
    text = f"journey-{row.pk}-{row.step_id}-{row.sequence}"
    if len(text) <= OCCURRENCE_LENGTH:
        return text
    digest = hashlib.sha256(row.step_id.encode()).hexdigest()[:24]
    return f"journey-{row.pk}-{digest}-{row.sequence}"


def _unreachable(campaign: Campaign, rows: list[Row]) -> set[int]:
    """The contacts (of `rows`) the campaign cannot reach: no address or no consent."""
    ids = sorted({row.contact_id for row in rows})
    consent = consent_current(ids)
    field = "phone" if campaign.channel == Channel.SMS else "email"
    addresses = dict(Contact.objects.filter(pk__in=ids).values_list("pk", field))
    granted = ConsentRecord.Status.GRANTED
    return {
        cid
        for cid in ids
        if not addresses.get(cid)
        or consent.get(cid, {}).get((campaign.channel, campaign.purpose)) != granted
    }


def _deliver(step: Step, rows: list[Row]) -> tuple[dict[int, dict[str, Any]], list[Result]]:
    """Create the deliveries of enrollments reaching the step: ({enrollment id: ledger
    outcome}, results for those that cannot be sent)."""
    from journeys.engine.runners import failed

    slugs = [str(step["campaign"])]
    if step.get("fallback_campaign"):
        slugs.append(str(step["fallback_campaign"]))
    found = {c.slug: c for c in Campaign.objects.filter(slug__in=slugs)}
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        error = f"campaign {missing[0]!r} no longer exists"
        return {}, [failed(row, error) for row in rows]
    first = found[slugs[0]]
    unreachable = _unreachable(first, rows) if len(slugs) == 2 else set()
    by_campaign: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_campaign[slugs[1] if row.contact_id in unreachable else slugs[0]].append(row)
    outcomes: dict[int, dict[str, Any]] = {}
    for slug, members in by_campaign.items():
        campaign = found[slug]
        targets = [(row.contact_id, step_occurrence(row)) for row in members]
        ids = campaign_deliver_to_contacts(campaign=campaign, targets=targets)
        for row in members:
            outcome: dict[str, Any] = {
                "campaign": slug,
                "channel": campaign.channel,
                "fallback": slug != slugs[0],
                "delivery_id": None,
            }
            if ids is None:
                outcome["skipped"] = f"campaign {campaign.status}"
            else:
                outcome["delivery_id"] = ids.get((row.contact_id, step_occurrence(row)))
            outcomes[row.pk] = outcome
    return outcomes, []


def _decide(
    ctx: Context,
    info: VersionInfo,
    row: Row,
    outcome: dict[str, Any],
    run: Run | None,
    deliveries: dict[int, tuple[str, dt.datetime | None]],
) -> Result:
    ledger_pk = run[0] if run is not None else None
    nxt = info.flow.after(row.step_id)
    delivery_id = outcome.get("delivery_id")
    if delivery_id is None:  # a draft or cancelled campaign, or the contact is gone
        return Result(row, "move", next_step=nxt, ledger=outcome, ledger_pk=ledger_pk)
    status, not_before = deliveries.get(delivery_id, ("missing", None))
    if status in FINAL or status == "missing":
        final = {**outcome, "delivery_status": status}
        return Result(row, "move", next_step=nxt, ledger=final, ledger_pk=ledger_pk)
    due = ctx.now + HOLD_POLL
    if status == DStatus.DEFERRED and not_before is not None:
        due = max(not_before + DEFER_GRACE, ctx.now + dt.timedelta(seconds=1))
    # A new hold writes its "running" ledger row; a hold found again writes nothing.
    ledger = outcome if run is None else None
    return Result(
        row, "hold", due_at=due, ledger=ledger, ledger_status="running", state="holding a send"
    )


def run_send(ctx: Context, info: VersionInfo, step: Step, rows: list[Row]) -> list[Result]:
    runs = ledger_runs(rows, str(step["id"]))
    out: list[Result] = []
    settled = [row for row in rows if row.pk in runs and runs[row.pk][1] != StepRun.Status.RUNNING]
    out.extend(Result(row, "move", next_step=info.flow.after(row.step_id)) for row in settled)
    fresh = [row for row in rows if row.pk not in runs]
    created, failures = _deliver(step, fresh) if fresh else ({}, [])
    out.extend(failures)
    outcomes = {pk: run[2] for pk, run in runs.items() if run[1] == StepRun.Status.RUNNING}
    outcomes.update(created)
    delivery_ids = [o["delivery_id"] for o in outcomes.values() if o.get("delivery_id")]
    deliveries = {
        pk: (status, not_before)
        for pk, status, not_before in Delivery.objects.filter(pk__in=delivery_ids).values_list(
            "pk", "status", "not_before"
        )
    }
    for row in rows:
        if row.pk in outcomes:
            out.append(_decide(ctx, info, row, outcomes[row.pk], runs.get(row.pk), deliveries))
    return out
