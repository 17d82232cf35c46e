from django.urls import path

from crm.api import segment, views

app_name = "crm_api"

urlpatterns = [
    path("contacts", views.contacts, name="contacts"),
    # A str, not <uuid:>: an id that is not a UUID gets the API's JSON 404, not Django's page.
    path("contacts/<str:contact_id>", views.contact_detail, name="contact-detail"),
    path("events", views.events, name="events"),
    # Segment's spec, so that its libraries and RudderStack's post here unchanged.
    path("track", segment.track, name="segment-track"),
    path("identify", segment.identify, name="segment-identify"),
    path("page", segment.page, name="segment-page"),
    path("screen", segment.screen, name="segment-screen"),
    path("alias", segment.alias, name="segment-alias"),
    path("batch", segment.batch, name="segment-batch"),
    path("openapi.json", views.openapi, name="openapi"),
    path("docs", views.docs, name="docs"),
    # Last: every other path under /api/v1/ is a JSON 404 too.
    path("<path:rest>", views.not_found, name="not-found"),
]
