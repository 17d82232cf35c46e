"""Double opt-in: a subscribe request becomes consent only when its link is confirmed."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from crm.models import DoubleOptIn


@transaction.atomic
def optin_expire_pending() -> int:
    """Mark every pending request past its expiry as expired; returns how many."""
    return DoubleOptIn.objects.filter(
        status=DoubleOptIn.Status.PENDING, expires_at__lt=timezone.now()
    ).update(status=DoubleOptIn.Status.EXPIRED)
