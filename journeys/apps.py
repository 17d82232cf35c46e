from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Their imports register the start_journey action and connect the receivers.
        from journeys import actions, receivers  # noqa: F401
