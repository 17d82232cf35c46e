"""Public pages and provider webhooks of campaigns. Each module appends its own patterns."""

from django.urls import URLPattern, URLResolver, path

app_name = "campaigns"
urlpatterns: list[URLPattern | URLResolver] = []

# Customer-facing consent pages and Twilio's webhooks.
from campaigns.views import preferences, unsubscribe, webhooks  # noqa: E402

urlpatterns += [
    path("u/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/one-click/", unsubscribe.one_click, name="one_click"),
    path("preferences/<str:token>/", preferences.preferences, name="preferences"),
    path("webhooks/twilio/inbound/", webhooks.twilio_inbound, name="twilio_inbound"),
    path("webhooks/twilio/status/", webhooks.twilio_status, name="twilio_status"),
    # One URL shape for every ESP; the view answers 404 for all but settings.EMAIL_ESP, read
    # per request, so settings overridden in tests and the demo take effect at once.
    path("webhooks/anymail/<slug:esp>/tracking/", webhooks.email_tracking, name="email_tracking"),
]

# Own click and open tracking (docs/tracking.md).
from campaigns.tracking import views as tracking  # noqa: E402

urlpatterns += [
    path("t/c/<str:token>", tracking.click, name="track_click"),
    path("t/o/<str:token>", tracking.pixel, name="track_open"),
]
