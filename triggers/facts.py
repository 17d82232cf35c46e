"""What a fact snapshot contains, and the names of its keys. Pure: no database.

A snapshot is one flat JSON object per contact, posted to durable_rules. Keys are made of
[a-z0-9_] so that no engine path syntax can be injected by a marketer's option (an event
name, a segment slug or an attribute name is hashed into the key, never spliced in).

Always present (when known; an unknown value is left out, and a comparison on a missing key
is false in durable_rules):
    cid             the contact's id (every snapshot has it: the catch-all rule matches on it)
    now_ts          the evaluation time, epoch seconds
    inactive_days   days since the latest event of any type (Contact.last_activity_at)
    purchase_days   days since the latest order_completed (Contact.last_purchase_at)
    lifecycle       lifecycle stage, e.g. "dormant"
    rfm_group       RFM group, e.g. "champions"
    p_purchase      probability of at least one purchase in the prediction horizon
    local_minutes   minutes since local midnight in the contact's zone (UTC when unknown)
    local_weekday   0 (Monday) to 6 (Sunday), local
Needed by conditions (see the Need classes below): windowed event counts, segment
membership, consent, attributes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from core.conditions import PropertyFilter, Window

BASE_KEYS = (
    "cid",
    "now_ts",
    "inactive_days",
    "purchase_days",
    "lifecycle",
    "rfm_group",
    "p_purchase",
    "local_minutes",
    "local_weekday",
)


def _digest(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True)
class EventCountNeed:
    """How many events of `event` the contact had in the last `hours`, matching `where`."""

    event: str
    hours: int
    where: tuple[PropertyFilter, ...] = ()

    @property
    def window(self) -> Window:
        return Window(self.hours, "hour")

    @property
    def key(self) -> str:
        return f"ev_{_digest(self.event, self.hours, self.where)}"


@dataclass(frozen=True)
class SegmentNeed:
    """Membership of one segment: current member, hours since the latest entry and exit."""

    slug: str

    @property
    def member_key(self) -> str:
        return f"seg_in_{_digest(self.slug)}"

    @property
    def entered_key(self) -> str:
        return f"seg_entered_h_{_digest(self.slug)}"

    @property
    def exited_key(self) -> str:
        return f"seg_exited_h_{_digest(self.slug)}"


@dataclass(frozen=True)
class ConsentNeed:
    channel: str
    purpose: str

    @property
    def key(self) -> str:
        return f"consent_{_digest(self.channel, self.purpose)}"


@dataclass(frozen=True)
class AttributeNeed:
    """A custom attribute (Contact.attributes) or one of the contact fields in
    CONTACT_FIELDS: as text (key) and, when it reads as a number, as a number
    (number_key)."""

    name: str

    @property
    def key(self) -> str:
        return f"attr_{_digest(self.name)}"

    @property
    def number_key(self) -> str:
        return f"attrn_{_digest(self.name)}"


# Contact fields an attribute condition may compare, besides custom attributes.
CONTACT_FIELDS = ("country", "locale", "timezone", "first_name", "last_name")


@dataclass(frozen=True)
class BaseNeed:
    """A key of BASE_KEYS a condition reads (shown by the "why" view)."""

    key: str


Need = EventCountNeed | SegmentNeed | ConsentNeed | AttributeNeed | BaseNeed


def need_keys(need: Need) -> list[str]:
    """The snapshot keys a need fills."""
    if isinstance(need, SegmentNeed):
        return [need.member_key, need.entered_key, need.exited_key]
    if isinstance(need, AttributeNeed):
        return [need.key, need.number_key]
    return [need.key]
