from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Contacts and consent"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import receivers  # noqa: F401  (its decorators connect the receivers)
