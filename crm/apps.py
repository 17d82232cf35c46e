from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Contacts and consent"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm.receivers import marketers_group_ensure

        post_migrate.connect(marketers_group_ensure, dispatch_uid="crm.marketers_group_ensure")
