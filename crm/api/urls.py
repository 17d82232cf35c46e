from django.urls import path

from crm.api import views

app_name = "crm_api"

urlpatterns = [
    path("contacts", views.contacts, name="contacts"),
    path("contacts/<uuid:contact_uuid>", views.contact_detail, name="contact-detail"),
    path("events", views.events, name="events"),
    path("openapi.json", views.openapi, name="openapi"),
    path("docs", views.docs, name="docs"),
]
