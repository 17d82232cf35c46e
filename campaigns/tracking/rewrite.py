"""Rewriting a rendered marketing email for tracking, the last step of rendering it for one
delivery: every http(s) link of the HTML (href) and text parts becomes
PUBLIC_BASE_URL/t/c/<token>, a hidden honeypot link and a 1x1 open pixel go into the HTML, and
the targets (UTM parameters and the click id appended) are handed back to be stored on the
delivery. Unsubscribe and preference links, mailto:, tel: and #anchors stay as they are.

With tracking off for the campaign, links keep pointing at their own address, still with the
UTM parameters unless those are off too (they name the campaign, not the person)."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TypedDict
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.urls import reverse

from campaigns.tracking.tokens import CLICK_ID_PARAMETER, click_id, click_token, open_token


class TrackedLink(TypedDict):
    """One entry of Delivery.tracked_links, at the index its token names."""

    url: str  # as the template rendered it
    target: str  # where /t/c/ redirects: url with UTM parameters and the click id
    honeypot: bool  # the hidden link no person sees


@dataclass(frozen=True)
class LinkPolicy:
    """What to do to the links of one message."""

    delivery_id: int | None  # None: no tracking (previews)
    track: bool
    utm: list[tuple[str, str]]  # parameters to add, in order; empty when turned off
    keep: Collection[str] = ()  # exact URLs never touched (this message's consent links)


@dataclass
class TrackedMessage:
    html: str
    text: str
    links: list[TrackedLink] = field(default_factory=list)


# Links people click: <a>, <area> and Outlook's VML buttons (<v:roundrect href=...>); never
# <link href> (a stylesheet every client loads would count as a click).
_HREF = re.compile(
    r"""(<(?:a|area|v:[a-z]+)\b[^>]*?\shref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"""https?://[^\s<>"']+""", re.IGNORECASE)
_TRAILING = ".,;:!?)]}"
_BODY_OPEN = re.compile(r"<body[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


def utm_parameters(*, campaign_slug: str, variant_name: str) -> list[tuple[str, str]]:
    params = [
        ("utm_source", settings.TRACKING_UTM_SOURCE),
        ("utm_medium", "email"),
        ("utm_campaign", campaign_slug),
    ]
    if variant_name:
        params.append(("utm_content", variant_name))
    return params


def with_parameters(url: str, params: list[tuple[str, str]]) -> str:
    """`url` with `params` appended to its query, except the names it already has (a link's
    own utm_campaign wins). The existing query is kept byte for byte; the fragment stays
    last."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    present = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(name, value) for name, value in params if name not in present]
    if not extra:
        return url
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit(parts._replace(query=query))


def _consent_prefixes() -> tuple[str, ...]:
    base = settings.PUBLIC_BASE_URL
    # The token is a placeholder: only the path in front of it matters.
    consent = [
        base + reverse(name, args=["x"]).removesuffix("x/")
        for name in ("campaigns:unsubscribe", "campaigns:preferences")
    ]
    return (*consent, base + "/t/")


class _Rewriter:
    def __init__(self, policy: LinkPolicy) -> None:
        self.policy = policy
        self.links: list[TrackedLink] = []
        self.index_of: dict[str, int] = {}
        self.skip_prefixes = _consent_prefixes()

    def _left_alone(self, url: str) -> bool:
        lowered = url.strip().lower()
        if not lowered.startswith(("http://", "https://")):
            return True  # mailto:, tel:, #anchor, relative, template leftovers
        return url in self.policy.keep or url.startswith(self.skip_prefixes)

    def _index(self, url: str, *, honeypot: bool = False) -> int:
        if not honeypot and url in self.index_of:
            return self.index_of[url]
        index = len(self.links)
        target = url
        if not honeypot:
            target = with_parameters(url, self.policy.utm)
            assert self.policy.delivery_id is not None
            cid = click_id(delivery_id=self.policy.delivery_id, link_index=index)
            target = with_parameters(target, [(CLICK_ID_PARAMETER, cid)])
            self.index_of[url] = index
        self.links.append({"url": url, "target": target, "honeypot": honeypot})
        return index

    def replacement(self, url: str) -> str:
        """What goes where `url` was (unescaped)."""
        if self._left_alone(url):
            return url
        url = url.strip()  # an href's stray spaces are no part of the address
        if not self.policy.track or self.policy.delivery_id is None:
            return with_parameters(url, self.policy.utm)
        index = self._index(url)
        return self.click_url(index)

    def click_url(self, index: int) -> str:
        assert self.policy.delivery_id is not None
        token = click_token(delivery_id=self.policy.delivery_id, link_index=index)
        return settings.PUBLIC_BASE_URL + reverse("campaigns:track_click", args=[token])

    def html(self, source: str) -> str:
        def one(match: re.Match[str]) -> str:
            raw = next(g for g in match.groups()[1:] if g is not None)
            url = html_lib.unescape(raw)
            new = self.replacement(url)
            if new == url:
                return match.group(0)
            return f'{match.group(1)}"{html_lib.escape(new, quote=True)}"'

        return _HREF.sub(one, source)

    def text(self, source: str) -> str:
        def one(match: re.Match[str]) -> str:
            found = match.group(0)
            url = found.rstrip(_TRAILING)
            return self.replacement(url) + found[len(url) :]

        return _URL_IN_TEXT.sub(one, source)

    def html_extras(self, source: str) -> str:
        """The honeypot link at the top of the body (no person sees or hears it; a scanner
        following every href does) and the open pixel at its end."""
        assert self.policy.delivery_id is not None
        honeypot = self.click_url(self._index(settings.PUBLIC_BASE_URL + "/", honeypot=True))
        trap = (
            f'<a href="{html_lib.escape(honeypot)}" aria-hidden="true" tabindex="-1" '
            'style="display:none !important;font-size:0;max-height:0;overflow:hidden;'
            'mso-hide:all"></a>'
        )
        pixel_url = settings.PUBLIC_BASE_URL + reverse(
            "campaigns:track_open", args=[open_token(delivery_id=self.policy.delivery_id)]
        )
        pixel = (
            f'<img src="{html_lib.escape(pixel_url)}" width="1" height="1" alt="" '
            'aria-hidden="true" style="display:block;border:0;width:1px;height:1px">'
        )
        source = _insert(source, _BODY_OPEN, trap, after=True)
        return _insert(source, _BODY_CLOSE, pixel, after=False)


def _insert(source: str, where: re.Pattern[str], piece: str, *, after: bool) -> str:
    match = where.search(source)
    if match is None:
        return piece + source if after else source + piece
    at = match.end() if after else match.start()
    return source[:at] + piece + source[at:]


def message_rewrite(*, html: str, text: str, policy: LinkPolicy) -> TrackedMessage:
    """The message with its links rewritten under `policy`, and the links to store on the
    delivery (empty when nothing is tracked)."""
    if not policy.track and not policy.utm:
        return TrackedMessage(html=html, text=text)
    rewriter = _Rewriter(policy)
    html = rewriter.html(html) if html else html
    text = rewriter.text(text) if text else text
    if policy.track and policy.delivery_id is not None and html:
        html = rewriter.html_extras(html)
    return TrackedMessage(html=html, text=text, links=rewriter.links)
