from django.urls import URLPattern, URLResolver, include, path

# The API and the public subscribe pages are added here by their modules.
urlpatterns: list[URLPattern | URLResolver] = []

# The public subscribe and confirmation pages.
urlpatterns.append(path("", include("crm.urls_public")))

# The ingestion API.
urlpatterns.append(path("api/v1/", include("crm.api.urls")))
