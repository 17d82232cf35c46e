"""Who made a hit: `human`, `scanner` or `machine_open`, with the reasons, decided from all
the hits of one delivery at once (pure functions, no database).

Reasons (docs/tracking.md):
- head_request: a HEAD request; people's browsers GET.
- honeypot: this address followed the hidden link no person sees, in this message.
- scanner_user_agent / no_user_agent: a known scanner, library or link-preview agent
  (SCANNER_AGENTS), or none at all.
- scanner_network: from a mail security vendor's published range (SCANNER_NETWORKS, plus
  settings.TRACKING_SCANNER_NETWORKS).
- link_burst: two or more different links of the message from one address within
  TRACKING_BURST_SECONDS.
- too_soon: less than TRACKING_SCANNER_SECONDS after the message was sent.
- apple_privacy_proxy (opens): Apple Mail Privacy Protection fetches every image of every
  message from Apple's network (17.0.0.0/8) with the bare agent "Mozilla/5.0".
- gmail_image_proxy (opens): Gmail fetches images when the person opens the message: human.

too_soon and apple_privacy_proxy are soft: a human click on the delivery later relabels the
hits that only they marked as human (confirmed_by_human_click). The others are hard."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

HUMAN = "human"
SCANNER = "scanner"
MACHINE_OPEN = "machine_open"
CLICK = "click"
OPEN = "open"

SOFT_REASONS = frozenset({"too_soon", "apple_privacy_proxy"})
CONFIRMED = "confirmed_by_human_click"
_RANK = {SCANNER: 0, MACHINE_OPEN: 1, HUMAN: 2}

# Lowercased pieces of user agents that are never a person reading mail: mail security
# gateways, HTTP libraries, headless browsers and link previewers. Kept short on purpose; a
# substring that also occurs in real browsers' agents must not go here.
SCANNER_AGENTS: tuple[str, ...] = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "messagelabs",
    "symantec",
    "trendmicro",
    "trend micro",
    "forcepoint",
    "sophos",
    "fortiguard",
    "zscaler",
    "ironport",
    "bitdefender",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "headlesschrome",
    "phantomjs",
    "bot/",
    "bot;",
    "crawler",
    "spider",
    "linkexpanding",
    "preview",
    "scanner",
)
# Published ranges of mail security vendors that fetch links on delivery: Barracuda
# (64.235.144.0/20), Mimecast US (205.139.110.0/24, 207.211.30.0/24), Proofpoint
# (148.163.128.0/19), Cisco IronPort cloud (68.232.128.0/19). Extend per deployment with
# TRACKING_SCANNER_NETWORKS.
SCANNER_NETWORKS: tuple[str, ...] = (
    "64.235.144.0/20",
    "205.139.110.0/24",
    "207.211.30.0/24",
    "148.163.128.0/19",
    "68.232.128.0/19",
)
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
APPLE_PROXY_AGENT = "mozilla/5.0"
GMAIL_PROXY_AGENT = "googleimageproxy"


@dataclass
class Hit:
    """What the labeller needs of one hit; `label` and `reasons` are its output."""

    id: int
    kind: str  # click or open
    link_index: int | None
    honeypot: bool  # the hidden link
    method: str
    ip: str | None
    user_agent: str
    occurred_at: dt.datetime
    label: str = ""
    reasons: list[str] = field(default_factory=list)


@lru_cache(maxsize=4)
def _networks(extra: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for value in SCANNER_NETWORKS + extra:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"TRACKING_SCANNER_NETWORKS: {value!r} is not a network, e.g. 192.0.2.0/24"
            ) from exc
    return tuple(networks)


def _address(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip) if ip else None
    except ValueError:
        return None


def _in_scanner_network(ip: str | None) -> bool:
    address = _address(ip)
    extra = tuple(settings.TRACKING_SCANNER_NETWORKS)
    return address is not None and any(address in net for net in _networks(extra))


def _agent_reasons(user_agent: str) -> list[str]:
    agent = user_agent.strip().lower()
    if not agent:
        return ["no_user_agent"]
    if any(piece in agent for piece in SCANNER_AGENTS):
        return ["scanner_user_agent"]
    return []


def _is_apple_proxy(hit: Hit) -> bool:
    address = _address(hit.ip)
    in_apple = address is not None and address.version == 4 and address in APPLE_NETWORK
    return in_apple or hit.user_agent.strip().lower() == APPLE_PROXY_AGENT


def _burst_ids(hits: Sequence[Hit]) -> set[int]:
    """The click hits that have a hit on another link of the message from the same address
    within TRACKING_BURST_SECONDS: per address, in time order, the nearest hit on a different
    link before and after each hit (n log n, so a message clicked thousands of times is no
    quadratic work)."""
    window = dt.timedelta(seconds=settings.TRACKING_BURST_SECONDS)
    by_address: dict[str | None, list[Hit]] = {}
    for hit in hits:
        if hit.kind == CLICK and not hit.honeypot:
            by_address.setdefault(hit.ip, []).append(hit)
    found: set[int] = set()
    for group in by_address.values():
        group.sort(key=lambda h: h.occurred_at)
        found.update(_bursts_in_order(group, window))
    return found


def _bursts_in_order(group: list[Hit], window: dt.timedelta) -> set[int]:
    size = len(group)
    before: list[int | None] = [None] * size  # the nearest earlier hit on another link
    after: list[int | None] = [None] * size  # the nearest later one
    for i in range(1, size):
        previous = group[i - 1]
        before[i] = i - 1 if previous.link_index != group[i].link_index else before[i - 1]
    for i in range(size - 2, -1, -1):
        following = group[i + 1]
        after[i] = i + 1 if following.link_index != group[i].link_index else after[i + 1]
    found = set()
    for i, hit in enumerate(group):
        near = [j for j in (before[i], after[i]) if j is not None]
        if any(abs(group[j].occurred_at - hit.occurred_at) <= window for j in near):
            found.add(hit.id)
    return found


def _hard_reasons(hit: Hit, trapped: set[str | None], bursts: set[int]) -> list[str]:
    reasons = []
    if hit.method.upper() == "HEAD":
        reasons.append("head_request")
    if hit.honeypot or hit.ip in trapped:
        reasons.append("honeypot")
    reasons += _agent_reasons(hit.user_agent)
    if _in_scanner_network(hit.ip):
        reasons.append("scanner_network")
    if hit.id in bursts:
        reasons.append("link_burst")
    return reasons


def _label_one(
    hit: Hit, trapped: set[str | None], bursts: set[int], sent_at: dt.datetime | None
) -> None:
    hard = _hard_reasons(hit, trapped, bursts)
    if hit.kind == OPEN and not hard and GMAIL_PROXY_AGENT in hit.user_agent.lower():
        hit.label, hit.reasons = HUMAN, ["gmail_image_proxy"]
        return
    soft = []
    too_soon = dt.timedelta(seconds=settings.TRACKING_SCANNER_SECONDS)
    if sent_at is not None and hit.occurred_at - sent_at < too_soon:
        soft.append("too_soon")
    if hit.kind == OPEN and _is_apple_proxy(hit):
        soft.append("apple_privacy_proxy")
    hit.reasons = hard + soft
    if hard:
        hit.label = SCANNER
    elif soft:
        hit.label = MACHINE_OPEN if hit.kind == OPEN else SCANNER
    else:
        hit.label = HUMAN


def delivery_hits_label(hits: Sequence[Hit], *, sent_at: dt.datetime | None) -> None:
    """Label every hit of one delivery in place (all of them, old and new: a burst or a
    honeypot seen now can change what an earlier hit was)."""
    trapped = {hit.ip for hit in hits if hit.honeypot}
    bursts = _burst_ids(hits)
    for hit in hits:
        _label_one(hit, trapped, bursts, sent_at)
    human_clicks = [h.occurred_at for h in hits if h.kind == CLICK and h.label == HUMAN]
    if not human_clicks:
        return
    last = max(human_clicks)
    for hit in hits:
        if hit.label != HUMAN and hit.occurred_at <= last and set(hit.reasons) <= SOFT_REASONS:
            hit.label, hit.reasons = HUMAN, [*hit.reasons, CONFIRMED]


def best(labels: Sequence[str]) -> str:
    """The label of a Response made of several hits: human if any hit was."""
    return max(labels, key=lambda label: _RANK.get(label, -1))
