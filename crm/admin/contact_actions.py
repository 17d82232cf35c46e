"""Actions on a selection of contacts: export their data, erase their personal data.

Both run in the request (an export is built in memory, an erasure is done at once), so a
selection is bounded; larger jobs belong to `crm export-contact` / `crm erase-contact`.
"""

from __future__ import annotations

import io
import json
import zipfile

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.models import Contact
from crm.services.privacy import contact_erase, contact_export

ACTION_LIMIT = 200


def _over_limit(
    modeladmin: admin.ModelAdmin[Contact],
    request: HttpRequest,
    queryset: QuerySet[Contact],
    verb: str,
) -> bool:
    if queryset[: ACTION_LIMIT + 1].count() > ACTION_LIMIT:
        modeladmin.message_user(
            request,
            _(
                "Select at most %(limit)d contacts to %(verb)s at once; use the "
                "crm export-contact or crm erase-contact command for more."
            )
            % {"limit": ACTION_LIMIT, "verb": verb},
            messages.ERROR,
        )
        return True
    return False


@admin.action(description=_("Export selected contacts' data (JSON)"), permissions=["view"])
def export_data(
    modeladmin: admin.ModelAdmin[Contact], request: HttpRequest, queryset: QuerySet[Contact]
) -> HttpResponse | None:
    if _over_limit(modeladmin, request, queryset, "export"):
        return None
    contacts = list(queryset.order_by("pk"))
    if len(contacts) == 1:
        contact = contacts[0]
        body = json.dumps(
            contact_export(contact=contact), indent=2, ensure_ascii=False, cls=DjangoJSONEncoder
        )
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{contact.uuid}.json"'
        return response
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for contact in contacts:
            data = contact_export(contact=contact)
            archive.writestr(
                f"{contact.uuid}.json",
                json.dumps(data, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder),
            )
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="contacts-export-{stamp}.zip"'
    return response


@admin.action(description=_("Erase selected contacts' personal data…"), permissions=["erase"])
def erase_selected(
    modeladmin: admin.ModelAdmin[Contact], request: HttpRequest, queryset: QuerySet[Contact]
) -> TemplateResponse | None:
    """Asks first on a confirmation page, then erases when that page posts back."""
    if _over_limit(modeladmin, request, queryset, "erase"):
        return None
    if request.POST.get("post") == "yes":
        erased = 0
        requested_by = f"admin:{request.user.get_username()}"
        for contact in queryset.order_by("pk"):
            contact_erase(contact=contact, requested_by=requested_by)
            erased += 1
        modeladmin.message_user(
            request,
            ngettext(
                "Erased the personal data of %(count)d contact.",
                "Erased the personal data of %(count)d contacts.",
                erased,
            )
            % {"count": erased},
            messages.SUCCESS,
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Erase personal data?"),
        "opts": modeladmin.model._meta,
        "contacts": list(queryset.order_by("pk")),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "select_across": request.POST.get("select_across", "0"),
    }
    return TemplateResponse(request, "admin/crm/contact/erase_confirmation.html", context)
