"""Call an outgoing webhook: a JSON POST signed with HMAC-SHA256 over the body
(settings.TRIGGER_WEBHOOK_SECRET), with a timeout, to a public address only.

The host is resolved once, every address it resolves to is checked (private, loopback,
link-local, multicast, reserved and unspecified ones are refused unless
settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE), including the IPv4 address an IPv6 one carries
inside (6to4, Teredo, IPv4-mapped and -compatible, NAT64), and the connection goes to the
address that was checked, so a DNS answer that changes between check and connect cannot
redirect the call. Redirects are not followed."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.utils import timezone

from triggers.actions.base import ActionError, ActionType, actions

if TYPE_CHECKING:
    from triggers.models import TriggerFiring

SIGNATURE_HEADER = "X-Cadence-Signature"
MAX_TIMEOUT = 30


class WebhookOptions(TypedDict):
    """e.g. {"url": "https://hooks.example.com/cadence", "timeout": 5.0}"""

    url: str
    timeout: NotRequired[float]  # seconds; 5 when left out


class WebhookResult(TypedDict):
    url: str
    status: int  # the HTTP status the receiver answered, always 2xx


class WebhookPayload(TypedDict):
    """The JSON body of the POST; the receiver's contract, so its keys never change."""

    rule: str  # the rule's slug
    rule_version: int
    firing_id: int
    occurrence: str
    contact: str | None  # the contact's uuid; None when it no longer exists
    fired_at: str  # ISO 8601
    sent_at: str


class WebhookForm(forms.Form):
    url = forms.URLField(
        max_length=2000, assume_scheme="https", help_text="e.g. https://hooks.example.com/cadence"
    )
    timeout = forms.FloatField(
        min_value=0.5, max_value=MAX_TIMEOUT, required=False, help_text="Seconds, e.g. 5"
    )

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"])
        if urlsplit(url).scheme not in ("http", "https"):
            raise forms.ValidationError("only http and https URLs are allowed.")
        return url


def webhook_signature(body: bytes, *, secret: str) -> str:
    """The value of X-Cadence-Signature: 'sha256=' and the hex HMAC of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_NAT64_PREFIXES = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # RFC 6052 well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215 local-use prefix
)


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: a 6to4 relay, a Teredo relay or a NAT64
    gateway forwards to them, and a dual-stack host connects to an IPv4-mapped one directly.
    Python's is_global judges 2002::/16 and ::a.b.c.d as public whatever they carry."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    value = int(ip)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (:: and ::1 are not)
        found.append(ipaddress.IPv4Address(value))
    if any(ip in prefix for prefix in _NAT64_PREFIXES):
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return found


def _allowed_address(host: str, port: int) -> str:
    """Resolve host and return an address we may connect to; raise ActionError otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ActionError(f"webhook host {host!r} does not resolve: {exc}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not getattr(settings, "TRIGGER_WEBHOOKS_ALLOW_PRIVATE", False):
        allow = "(settings.TRIGGER_WEBHOOKS_ALLOW_PRIVATE allows it)"
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            inside = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
            for ipv4 in inside:
                if _not_public(ipv4):
                    raise ActionError(
                        f"webhook refused: {host} resolves to {address}, which embeds {ipv4}, "
                        f"a private, loopback or link-local address {allow}"
                    )
            if _not_public(ip):
                raise ActionError(
                    f"webhook refused: {host} resolves to {address}, a private, loopback or "
                    f"link-local address {allow}"
                )
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate verified for the host name."""

    def __init__(self, host: str, address: str, **kwargs: Any) -> None:
        super().__init__(host, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def webhook_post(*, url: str, payload: WebhookPayload, timeout: float) -> tuple[int, str]:
    secret = getattr(settings, "TRIGGER_WEBHOOK_SECRET", "")
    if not secret:
        raise ActionError("set TRIGGER_WEBHOOK_SECRET to sign outgoing webhooks")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _allowed_address(host, port)
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Cadence-Triggers/1",
        SIGNATURE_HEADER: webhook_signature(body, secret=secret),
        "Host": parts.netloc,
    }
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(host, address, port=port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(2000).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise ActionError(f"webhook {url} failed: {exc.__class__.__name__}: {exc}") from exc
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise ActionError(f"webhook {url} answered {response.status}: {text[:200]}")
    return response.status, text


@actions.register
class CallWebhook(ActionType[WebhookOptions, WebhookResult]):
    id = "webhook"
    label = "call the webhook {url}"
    form = WebhookForm

    def options(self, stored: Mapping[str, Any]) -> WebhookOptions:
        options = WebhookOptions(url=stored["url"])
        if "timeout" in stored:
            options["timeout"] = stored["timeout"]
        return options

    def run(
        self, options: WebhookOptions, *, firing: TriggerFiring, contact_id: int
    ) -> WebhookResult:
        from crm.models import Contact

        contact_uuid = Contact.objects.filter(pk=contact_id).values_list("uuid", flat=True).first()
        payload: WebhookPayload = {
            "rule": firing.rule.slug,
            "rule_version": firing.rule_version,
            "firing_id": firing.pk,
            "occurrence": firing.occurrence_key,
            "contact": str(contact_uuid) if contact_uuid else None,
            "fired_at": firing.fired_at.isoformat(),
            "sent_at": timezone.now().isoformat(),
        }
        status, _ = webhook_post(
            url=options["url"], payload=payload, timeout=float(options.get("timeout") or 5)
        )
        return {"url": options["url"], "status": status}
