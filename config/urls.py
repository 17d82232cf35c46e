from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health, name="health"),
    path("", include("crm.urls")),
    path("", include("campaigns.urls")),
    # Anymail's tracking webhooks, one per ESP, e.g. /webhooks/anymail/postmark/tracking/.
    path("webhooks/anymail/", include("anymail.urls")),
]
