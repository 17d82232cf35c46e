"""Double opt-in: a subscribe request becomes consent only when its link is confirmed.

Anyone can type anyone's address into the subscribe form, so what one address can be sent is
limited here, in the database, from the DoubleOptIn rows (the record of what was sent), by
the address's hash across contacts: at most one pending request per address and channel (a
repeat re-sends it), at most one confirmation per RESEND_INTERVAL and SENDS_PER_DAY a day.
A request over a limit sends nothing and the caller answers exactly as on success."""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from crm.models import MARKETING, Channel, ConsentRecord, Contact, ContactAlias, DoubleOptIn
from crm.normalise import address_hash, email_key, normalise_email, normalise_name
from crm.selectors import suppressed
from crm.services.consent import consent_record

logger = logging.getLogger(__name__)

CONFIRM_SALT = "crm.optin.confirm"
_USER_AGENT_MAX = 1000
RESEND_INTERVAL = dt.timedelta(minutes=10)
SENDS_PER_DAY = 5
_DAY = dt.timedelta(days=1)


@transaction.atomic
def optin_expire_pending() -> int:
    """Mark every pending request past its expiry as expired; returns how many."""
    return DoubleOptIn.objects.filter(
        status=DoubleOptIn.Status.PENDING, expires_at__lt=timezone.now()
    ).update(status=DoubleOptIn.Status.EXPIRED)


def mask_email(address: str) -> str:
    """a•••@example.com: enough for a person to recognise their address, not to learn one."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "•••"
    return f"{local[0]}•••@{domain}"


# Links, addresses and markup are not names; a stranger's "name" must not reach later emails.
_NOT_A_NAME = re.compile(r"://|www\.|[@<>]|[\w-]\.[a-z]{2,}\b", re.IGNORECASE)
_NAME_MAX = 150


def _plausible_name(raw: str) -> str:
    """The name to keep on a new contact: trimmed and at most _NAME_MAX characters, or none
    at all when it holds a link, an address or markup."""
    name = normalise_name(raw)
    if _NOT_A_NAME.search(name) or len(name) > _NAME_MAX:
        return ""
    return name


def _contact_for_email(*, email: str, first_name: str) -> Contact:
    """The contact with this address (or that had it before a merge), else a new one."""
    key = email_key(email)
    found = Contact.objects.filter(email_key=key).first()
    if found is not None:
        return found
    alias = ContactAlias.objects.filter(kind=ContactAlias.Kind.EMAIL, value=key).first()
    if alias is not None:
        return alias.contact
    try:
        # A savepoint, so that losing a race with a concurrent subscribe of the same address
        # leaves the outer transaction usable and the winner's row is found.
        with transaction.atomic():
            return Contact.objects.create(email=email, first_name=_plausible_name(first_name))
    except IntegrityError:
        return Contact.objects.get(email_key=key)


def _sends_in_last_day(*, key: str, channel: str, now: dt.datetime) -> list[dt.datetime]:
    """When confirmations went to this address in the last 24 hours, oldest first, from
    every request for it (pending, confirmed or expired, of any contact)."""
    since = now - _DAY
    rows = DoubleOptIn.objects.filter(
        address_hash=key, channel=channel, last_sent_at__gte=since
    ).values_list("sent_at", flat=True)
    moments = (dt.datetime.fromisoformat(moment) for row in rows for moment in row)
    return sorted(moment for moment in moments if moment >= since)


def optin_request(
    *,
    email: str,
    first_name: str = "",
    text: str,
    text_version: str,
    language: str,
    ip_address: str | None,
    user_agent: str,
    channel: str = Channel.EMAIL,
    purpose: str = MARKETING,
) -> DoubleOptIn | None:
    """Record a subscribe request and send its confirmation link after commit.

    While a request for the address is pending, a repeat updates it (the words, language and
    request details are the latest request's) and re-sends the same link, within the limits:
    a confirmation at most once per RESEND_INTERVAL and SENDS_PER_DAY a day per address.

    Raises ValidationError when the email is not an address. Returns None, sending nothing,
    when the address is suppressed or erased or over a limit: callers answer exactly as on
    success, so that neither the list nor the limits can be probed. An existing contact's
    name is never changed by this unauthenticated request."""
    address = normalise_email(email)
    if suppressed(channel=Channel.EMAIL, address=address):
        return None
    now = timezone.now()
    key = address_hash(channel, address)
    details = {
        "text": text,
        "text_version": text_version,
        "language": language,
        "requested_at": now,
        "request_ip": ip_address or None,
        "request_user_agent": (user_agent or "")[:_USER_AGENT_MAX],
    }
    with transaction.atomic():
        # A request past its expiry no longer holds the address's one pending place.
        DoubleOptIn.objects.filter(
            address_hash=key, channel=channel, status=DoubleOptIn.Status.PENDING, expires_at__lt=now
        ).update(status=DoubleOptIn.Status.EXPIRED)
        sends = _sends_in_last_day(key=key, channel=channel, now=now)
        if sends and (now - sends[-1] < RESEND_INTERVAL or len(sends) >= SENDS_PER_DAY):
            return None
        pending = DoubleOptIn.objects.filter(
            address_hash=key, channel=channel, status=DoubleOptIn.Status.PENDING
        ).first()
        if pending is None:
            contact = _contact_for_email(email=address, first_name=first_name)
            if contact.is_erased:
                return None
            try:
                with transaction.atomic():
                    optin = DoubleOptIn.objects.create(
                        contact=contact,
                        channel=channel,
                        purpose=purpose or MARKETING,
                        address_hash=key,
                        sent_at=[now.isoformat()],
                        last_sent_at=now,
                        expires_at=now + dt.timedelta(hours=settings.OPTIN_EXPIRY_HOURS),
                        **details,
                    )
            except IntegrityError:
                return None  # a concurrent request for the address created (and sent) it
        else:
            # Compare-and-swap on the last send: of concurrent repeats, one re-sends. The link
            # keeps the expiry it was first sent with.
            claimed = DoubleOptIn.objects.filter(
                pk=pending.pk,
                status=DoubleOptIn.Status.PENDING,
                last_sent_at=pending.last_sent_at,
            ).update(sent_at=[*pending.sent_at, now.isoformat()], last_sent_at=now, **details)
            if not claimed:
                return None
            optin = pending
        from crm.tasks import optin_send_confirmation  # the tasks module imports this one

        optin_id = optin.pk
        optin_send_confirmation.delay_on_commit(optin_id)
    return optin


def optin_token(*, optin: DoubleOptIn) -> str:
    return signing.dumps(optin.pk, salt=CONFIRM_SALT)


def optin_confirm_url(*, optin: DoubleOptIn) -> str:
    path = reverse("crm_subscribe_confirm", args=[optin_token(optin=optin)])
    return f"{settings.PUBLIC_BASE_URL}{path}"


def optin_for_token(*, token: str) -> DoubleOptIn | None:
    """The request a confirmation link names, whatever its status; None for a tampered
    token, a request that no longer exists, or one whose contact was erased."""
    try:
        optin_id = signing.loads(token, salt=CONFIRM_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(optin_id, int):
        return None
    optin = DoubleOptIn.objects.select_related("contact").filter(pk=optin_id).first()
    if optin is None or optin.contact.is_erased:
        return None
    return optin


def optin_is_open(*, optin: DoubleOptIn) -> bool:
    return optin.status == DoubleOptIn.Status.PENDING and optin.expires_at >= timezone.now()


def optin_confirm(
    *, optin: DoubleOptIn, ip_address: str | None, user_agent: str
) -> ConsentRecord | None:
    """Turn a pending, unexpired request into a granted consent entry with both requests as
    proof. Returns None when the request is no longer open (used, expired): one conditional
    UPDATE decides, so two clicks at once record consent once."""
    now = timezone.now()
    user_agent = (user_agent or "")[:_USER_AGENT_MAX]
    with transaction.atomic():
        claimed = DoubleOptIn.objects.filter(
            pk=optin.pk, status=DoubleOptIn.Status.PENDING, expires_at__gte=now
        ).update(status=DoubleOptIn.Status.CONFIRMED, confirmed_at=now)
        if not claimed:
            return None
        optin.refresh_from_db()
        return consent_record(
            contact=optin.contact,
            channel=optin.channel,
            purpose=optin.purpose,
            status=ConsentRecord.Status.GRANTED,
            source=ConsentRecord.Source.DOUBLE_OPT_IN,
            text=optin.text,
            text_version=optin.text_version,
            language=optin.language,
            ip_address=ip_address,
            user_agent=user_agent,
            proof={
                "optin_id": optin.pk,
                "requested_at": optin.requested_at.isoformat(),
                "request_ip": optin.request_ip,
                "request_user_agent": optin.request_user_agent,
                "confirm_ip": ip_address,
                "confirm_user_agent": user_agent,
            },
            occurred_at=now,
        )


def optin_language(*, optin: DoubleOptIn) -> str:
    """The language of the request's form, which its email and confirm page use: they show
    the consent words the person agreed to in it. Older requests: the contact's locale."""
    for candidate in (optin.language, optin.contact.locale or ""):
        try:
            return translation.get_supported_language_variant(candidate).lower()
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


def subscribe_consent_text(*, language: str) -> str:
    """The configured consent words of the subscribe form in `language` (a LANGUAGES code):
    exactly what the form shows and what the ledger records."""
    if language == "zh-hans":
        return str(settings.SUBSCRIBE_CONSENT_TEXT_ZH_HANS)
    return str(settings.SUBSCRIBE_CONSENT_TEXT)


def optin_send_confirmation(*, optin_id: int) -> bool:
    """Email the confirmation link of a request that is still open; returns whether a
    message went out. Suppression is checked again here, at the last moment."""
    optin = DoubleOptIn.objects.select_related("contact").filter(pk=optin_id).first()
    if optin is None or not optin_is_open(optin=optin):
        return False
    contact = optin.contact
    if contact.is_erased or not contact.email:
        return False
    if optin.address_hash and address_hash(optin.channel, contact.email) != optin.address_hash:
        # The contact's address changed since: the link goes only where it was asked for.
        logger.info("Opt-in %s: the contact's address changed; not sent", optin_id)
        return False
    if suppressed(channel=Channel.EMAIL, address=contact.email):
        logger.info("Opt-in %s: address suppressed since the request; not sent", optin_id)
        return False
    # No name: whoever typed the address typed the name too, and it need not be the person's
    # (a stranger could greet a victim with "Win $$$ at http://…").
    context = {
        "confirm_url": optin_confirm_url(optin=optin),
        "expires_at": optin.expires_at,
        "expiry_hours": settings.OPTIN_EXPIRY_HOURS,
        "consent_text": optin.text,
    }
    with translation.override(optin_language(optin=optin)):
        subject = " ".join(render_to_string("crm/email/optin_confirm_subject.txt", context).split())
        body = render_to_string("crm/email/optin_confirm_body.txt", context)
        html = render_to_string("crm/email/optin_confirm_body.html", context)
    message = EmailMultiAlternatives(subject=subject, body=body, to=[contact.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True
