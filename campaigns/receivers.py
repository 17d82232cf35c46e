"""Signal receivers of campaigns; CampaignsConfig.ready() imports this module, the decorators
connect them."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from campaigns import webhook_tasks
from campaigns.channels.provider_events import email_event_from_anymail, tracking_signal
from campaigns.models import Delivery, Response, TrackingHit
from crm.signals import contact_erased


@receiver(tracking_signal(), dispatch_uid="campaigns.email_tracking_received")
def email_tracking_received(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail's tracking signal, sent inside the webhook request: normalise the event and
    queue it, so that the ESP gets its 200 without waiting on our database."""
    normalised = email_event_from_anymail(event, esp_name=esp_name)
    webhook_tasks.email_event_record.delay_on_commit(normalised)


@receiver(contact_erased, dispatch_uid="campaigns.contact_erased_responses")
def contact_erased_forget_responses(sender: Any, contact_id: int, **kwargs: Any) -> None:
    """An SMS reply's text, a clicked URL and a provider's payload (addresses, numbers) are
    personal data; the fact that a response happened stays for campaign results."""
    Response.objects.filter(contact_id=contact_id).update(body="", url="", payload={})
    # Tracked hits keep the address and browser of whoever opened or clicked, and the links a
    # message was sent with may carry personal values: both go (those links then 404).
    TrackingHit.objects.filter(delivery__contact_id=contact_id).update(ip=None, user_agent="")
    Delivery.objects.filter(contact_id=contact_id).exclude(tracked_links=[]).update(
        tracked_links=[]
    )
