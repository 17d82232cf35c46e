from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Contacts and consent"
    default_auto_field = "django.db.models.BigAutoField"
