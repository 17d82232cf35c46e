from django.urls import path

from crm.api import views

app_name = "crm_api"

urlpatterns = [
    path("contacts", views.contacts, name="contacts"),
    # A str, not <uuid:>: an id that is not a UUID gets the API's JSON 404, not Django's page.
    path("contacts/<str:contact_id>", views.contact_detail, name="contact-detail"),
    path("events", views.events, name="events"),
    path("openapi.json", views.openapi, name="openapi"),
    path("docs", views.docs, name="docs"),
    # Last: every other path under /api/v1/ is a JSON 404 too.
    path("<path:rest>", views.not_found, name="not-found"),
]
