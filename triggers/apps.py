from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"
    verbose_name = "Trigger rules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from triggers import receivers  # noqa: F401  (its decorators connect the receivers)
