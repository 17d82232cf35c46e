"""The public subscribe pages, included by crm/urls.py."""

from django.urls import URLPattern, path

from crm import views

urlpatterns: list[URLPattern] = [
    path("subscribe/", views.subscribe, name="crm_subscribe"),
    path("subscribe/confirm/<str:token>/", views.subscribe_confirm, name="crm_subscribe_confirm"),
]
