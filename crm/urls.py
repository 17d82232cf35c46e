from django.urls import URLPattern, URLResolver

# The API and the public subscribe pages are added here by their modules.
urlpatterns: list[URLPattern | URLResolver] = []
