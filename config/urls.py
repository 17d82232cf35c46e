from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health, name="health"),
    path("", include("crm.urls")),
    # campaigns mounts the email tracking webhook of the configured ESP only
    # (/webhooks/anymail/<EMAIL_ESP>/tracking/), not all of anymail.urls.
    path("", include("campaigns.urls")),
]
