from django.contrib import admin

from crm.models import Contact


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin[Contact]):
    list_display = ("__str__", "email", "phone", "timezone", "created_at")
    search_fields = ("email_key", "phone", "first_name", "last_name", "external_id")
