"""What the demo shop starts with: segments, message templates, campaigns and the two trigger
rules from the mission. Idempotent: everything is got or created by slug."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign, MessageTemplate, Variant
from segments.models import Segment

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
RULES_YAML = DEMO_DATA / "rules.yaml"

# Segments a shop starts with: behaviour, purchases, consent, lifecycle and RFM combined.
DEMO_SEGMENTS: list[dict[str, Any]] = [
    {
        "slug": "browsed-not-bought-24h",
        "name": "Browsed, didn't buy (24 h)",
        "description": "Viewed at least 3 products and ordered nothing in the last day.",
        "min_size": 5,
        "definition": {
            "op": "and",
            "conditions": [
                {
                    "type": "behaviour",
                    "event": "product_viewed",
                    "operator": "at_least",
                    "count": 3,
                    "days": 1,
                },
                {"type": "behaviour", "event": "order_completed", "operator": "none", "days": 1},
            ],
        },
    },
    {
        "slug": "dormant-60d",
        "name": "Dormant for 60 days",
        "description": "No activity of any kind for more than 60 days.",
        "min_size": 5,
        "definition": {
            "op": "and",
            "conditions": [
                {"type": "recency", "of": "activity", "operator": "more_than", "days": 60}
            ],
        },
    },
    {
        "slug": "email-subscribers",
        "name": "Email subscribers",
        "description": "Everyone with email marketing consent.",
        "min_size": 10,
        "definition": {
            "op": "and",
            "conditions": [
                {"type": "consent", "channel": "email", "purpose": "marketing", "state": "has"}
            ],
        },
    },
    {
        "slug": "best-customers",
        "name": "Best customers",
        "description": "RFM champions or loyal customers who are still active.",
        "min_size": 5,
        "definition": {
            "op": "and",
            "conditions": [
                {
                    "op": "or",
                    "conditions": [
                        {"type": "rfm", "group": "champions"},
                        {"type": "rfm", "group": "loyal"},
                    ],
                },
                {"type": "lifecycle", "stages": ["active", "new", "reactivated"]},
            ],
        },
    },
    {
        "slug": "europe-kitchen-fans",
        "name": "Kitchen fans in Europe",
        "description": "Viewed kitchen products in the last 30 days, living in Europe.",
        "definition": {
            "op": "and",
            "conditions": [
                {
                    "type": "behaviour",
                    "event": "product_viewed",
                    "operator": "at_least",
                    "count": 1,
                    "days": 30,
                    "where": [{"property": "category", "operator": "equals", "value": "kitchen"}],
                },
                {"type": "country", "operator": "in", "countries": ["DE", "FR", "GB", "ES", "IT"]},
            ],
        },
    },
]

_FIRST_NAME = "{{ contact.first_name|default:'there' }}"

DEMO_TEMPLATES: dict[str, dict[str, str]] = {
    "browse-abandonment": {
        "name": "Browse abandonment",
        "channel": "email",
        "subject": f"Still thinking it over, {_FIRST_NAME}?",
        "preheader": "The things you looked at are still here.",
        "html_body": (
            f"<p>Hi {_FIRST_NAME},</p>"
            "<p>You were looking at <strong>{{ last_viewed.product_name|default:'something "
            "nice' }}</strong>. It is still in stock, and delivery is free this week.</p>"
            '<p><a href="https://shop.example.com/p/{{ last_viewed.product_id|lower }}">'
            "Take another look</a></p>"
        ),
    },
    "win-back-sms": {
        "name": "Win-back (SMS)",
        "channel": "sms",
        "sms_body": (
            f"Hi {_FIRST_NAME}, we miss you at Cadence Demo Shop: 15% off with code COMEBACK "
            "this week. Reply STOP to opt out."
        ),
    },
    "win-back-email": {
        "name": "Win-back (email)",
        "channel": "email",
        "subject": f"We miss you, {_FIRST_NAME}: 15% off this week",
        "html_body": (
            f"<p>Hi {_FIRST_NAME},</p><p>It has been a while. Here is 15% off everything "
            "with the code <strong>COMEBACK</strong>, valid for seven days.</p>"
        ),
    },
    "november-a": {
        "name": "November picks, A (plain subject)",
        "channel": "email",
        "subject": "November picks for you",
        "html_body": (
            f"<p>Hi {_FIRST_NAME},</p><p>Our November picks are in: warm mugs, good books "
            "and a charger that does it all.</p>"
        ),
    },
    "november-b": {
        "name": "November picks, B (personal subject)",
        "channel": "email",
        "subject": f"{_FIRST_NAME}, we picked these for you",
        "html_body": (
            f"<p>Hi {_FIRST_NAME},</p><p>We picked a few things we think you will like, "
            "starting with {{ last_viewed.product_name|default:'our new mugs' }}.</p>"
        ),
    },
}

# slug: (name, channel, kind, template slugs, extra fields)
DEMO_CAMPAIGNS: list[tuple[str, str, str, str, list[str], dict[str, Any]]] = [
    (
        "browse-abandonment",
        "Still thinking it over?",
        "email",
        Campaign.Kind.TRIGGERED,
        ["browse-abandonment"],
        {},
    ),
    ("win-back-sms", "Win-back (SMS)", "sms", Campaign.Kind.TRIGGERED, ["win-back-sms"], {}),
    (
        "win-back-email",
        "Win-back (email fallback)",
        "email",
        Campaign.Kind.TRIGGERED,
        ["win-back-email"],
        {},
    ),
    (
        "november-picks",
        "November picks",
        "email",
        Campaign.Kind.BROADCAST,
        ["november-a", "november-b"],
        {"holdout_percent": 10, "goal_event": "order_completed", "attribution_window_days": 5},
    ),
]


def demo_segments_create() -> list[Segment]:
    segments = []
    for spec in DEMO_SEGMENTS:
        segment, _ = Segment.objects.get_or_create(slug=spec["slug"], defaults=spec)
        segments.append(segment)
    return segments


def demo_campaigns_create(*, now: dt.datetime | None = None) -> dict[str, Campaign]:
    """The triggered campaigns the rules send, and a broadcast scheduled for tomorrow at
    10:00 in each recipient's own time zone."""
    now = now or timezone.now()
    templates = {}
    for slug, spec in DEMO_TEMPLATES.items():
        templates[slug], _ = MessageTemplate.objects.get_or_create(name=spec["name"], defaults=spec)
    audience = Segment.objects.get(slug="email-subscribers")
    campaigns = {}
    for slug, name, channel, kind, template_slugs, extra in DEMO_CAMPAIGNS:
        defaults: dict[str, Any] = {"name": name, "channel": channel, "kind": kind, **extra}
        if kind == Campaign.Kind.TRIGGERED:
            defaults["status"] = Campaign.Status.SENDING
        else:
            defaults.update(
                status=Campaign.Status.SCHEDULED,
                audience=audience,
                scheduled_at=now + dt.timedelta(days=1),
                send_at_local_time=dt.time(10, 0),
            )
        campaign, created = Campaign.objects.get_or_create(slug=slug, defaults=defaults)
        if created:
            for index, template_slug in enumerate(template_slugs):
                Variant.objects.create(
                    campaign=campaign, name="AB"[index], template=templates[template_slug]
                )
        campaigns[slug] = campaign
    return campaigns


def demo_rules_import() -> str:
    """Load devtools/demo_data/rules.yaml (browse-abandonment and win-back, enabled)."""
    out = StringIO()
    call_command("triggers", "import", str(RULES_YAML), stdout=out)
    return out.getvalue()


def demo_catalogue_create() -> None:
    from devtools.demo.journey import demo_journey_create

    demo_segments_create()
    demo_campaigns_create()
    demo_rules_import()
    demo_journey_create()
