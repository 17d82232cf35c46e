from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from campaigns import (
            checks,
            receivers,  # noqa: F401  (its decorators connect the receivers)
        )

        checks.register()
