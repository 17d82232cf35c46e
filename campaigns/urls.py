"""Public pages and provider webhooks of campaigns. Each module appends its own patterns."""

from django.urls import URLPattern, URLResolver

app_name = "campaigns"
urlpatterns: list[URLPattern | URLResolver] = []
