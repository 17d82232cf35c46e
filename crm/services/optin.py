"""Double opt-in: a subscribe request becomes consent only when its link is confirmed."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from crm.models import MARKETING, Channel, ConsentRecord, Contact, ContactAlias, DoubleOptIn
from crm.normalise import email_key, normalise_email, normalise_name
from crm.selectors import suppressed
from crm.services.consent import consent_record

logger = logging.getLogger(__name__)

CONFIRM_SALT = "crm.optin.confirm"
_USER_AGENT_MAX = 1000


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
            return Contact.objects.create(email=email, first_name=normalise_name(first_name)[:150])
    except IntegrityError:
        return Contact.objects.get(email_key=key)


def optin_request(
    *,
    email: str,
    first_name: str = "",
    text: str,
    text_version: str,
    ip_address: str | None,
    user_agent: str,
    channel: str = Channel.EMAIL,
    purpose: str = MARKETING,
) -> DoubleOptIn | None:
    """Record a pending subscribe request and send its confirmation link after commit.

    Raises ValidationError when the email is not an address. Returns None, creating and
    sending nothing, when the address is suppressed: callers answer exactly as on success so
    that the suppression list cannot be probed. An existing contact's name is never changed
    by this unauthenticated request."""
    address = normalise_email(email)
    if suppressed(channel=Channel.EMAIL, address=address):
        return None
    now = timezone.now()
    with transaction.atomic():
        contact = _contact_for_email(email=address, first_name=first_name)
        if contact.is_erased:
            return None
        optin = DoubleOptIn.objects.create(
            contact=contact,
            channel=channel,
            purpose=purpose or MARKETING,
            text=text,
            text_version=text_version,
            requested_at=now,
            request_ip=ip_address or None,
            request_user_agent=(user_agent or "")[:_USER_AGENT_MAX],
            expires_at=now + dt.timedelta(hours=settings.OPTIN_EXPIRY_HOURS),
        )
        from crm.tasks import optin_send_confirmation  # the tasks module imports this one

        optin_id = optin.pk
        transaction.on_commit(lambda: optin_send_confirmation.delay(optin_id))
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


def _language_for(contact: Contact) -> str:
    try:
        return translation.get_supported_language_variant(contact.locale or "")
    except LookupError:
        return settings.LANGUAGE_CODE


def optin_send_confirmation(*, optin_id: int) -> bool:
    """Email the confirmation link of a request that is still open; returns whether a
    message went out. Suppression is checked again here, at the last moment."""
    optin = DoubleOptIn.objects.select_related("contact").filter(pk=optin_id).first()
    if optin is None or not optin_is_open(optin=optin):
        return False
    contact = optin.contact
    if contact.is_erased or not contact.email:
        return False
    if suppressed(channel=Channel.EMAIL, address=contact.email):
        logger.info("Opt-in %s: address suppressed since the request; not sent", optin_id)
        return False
    context = {
        "first_name": contact.first_name,
        "confirm_url": optin_confirm_url(optin=optin),
        "expires_at": optin.expires_at,
        "expiry_hours": settings.OPTIN_EXPIRY_HOURS,
        "consent_text": optin.text,
    }
    with translation.override(_language_for(contact)):
        subject = " ".join(render_to_string("crm/email/optin_confirm_subject.txt", context).split())
        body = render_to_string("crm/email/optin_confirm_body.txt", context)
        html = render_to_string("crm/email/optin_confirm_body.html", context)
    message = EmailMultiAlternatives(subject=subject, body=body, to=[contact.email])
    message.attach_alternative(html, "text/html")
    message.send()
    return True
