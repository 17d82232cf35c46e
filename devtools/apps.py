from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Layer 6, not a domain: the demo, the benchmarks, process helpers and the fake provider.
    It may import every app and is never imported by one; it has no models."""

    name = "devtools"
    verbose_name = "Developer tools"
    default_auto_field = "django.db.models.BigAutoField"
