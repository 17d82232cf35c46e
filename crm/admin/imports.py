"""Admin for CSV imports: "Import contacts / events". An upload is stored under var/imports/
and imported by a Celery task; its page shows the progress (refreshing itself while the run
is under way) and links to the per-row report.

File names are attacker-controlled: they are shown through the admin's escaping or
format_html, and only a sanitised form of them is ever used in a path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import row_for_url
from crm.models import ImportRun
from crm.services.importing import import_dir, import_run_upload_path
from crm.tasks import import_run_execute
from crm.uploads import refused_upload_size, upload_limit_bytes, upload_too_large_message

RUNNING = (ImportRun.Status.PENDING, ImportRun.Status.RUNNING)


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What the file holds"),
        choices=ImportRun.Kind.choices,
        initial=ImportRun.Kind.CONTACTS,
        help_text=_("Contacts (one person a row) or events (one thing a person did a row)."),
    )
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "A CSV file with a header row, e.g. contacts.csv with columns email, first_name, "
            "last_name, timezone, consent_email. UTF-8 is best; see docs/import.md."
        ),
    )

    def __init__(self, *args: Any, refused_size: int | None = None, **kwargs: Any) -> None:
        """refused_size: the size of an upload crm.uploads dropped for being too large."""
        super().__init__(*args, **kwargs)
        self.refused_size = refused_size
        self.fields["file"].help_text = format_html(
            "{} {}",
            self.fields["file"].help_text,
            _("Files up to %(mb)s MB.") % {"mb": settings.IMPORT_MAX_UPLOAD_MB},
        )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not upload.size:
            raise forms.ValidationError(_("The file is empty."))
        if upload.size > upload_limit_bytes():
            raise forms.ValidationError(upload_too_large_message(upload.size))
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.refused_size is not None:
            # The file was dropped while it was read: say why, not "this field is required".
            self.errors.pop("file", None)
            self.add_error("file", upload_too_large_message(self.refused_size))
        return cleaned


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin[ImportRun]):
    list_display = (
        "filename",
        "kind",
        "status",
        "progress",
        "created_by",
        "started_at",
        "finished_at",
        "report_link",
    )
    list_filter = ("kind", "status")
    search_fields = ("filename",)
    ordering = ("-id",)
    fields = (
        "kind",
        "filename",
        "status",
        "progress",
        "rows_read",
        "rows_created",
        "rows_updated",
        "rows_unchanged",
        "rows_rejected",
        "consents_refused",
        "error",
        "report_link",
        "created_by",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    change_form_template = "admin/crm/importrun/change_form.html"
    change_list_template = "admin/crm/importrun/change_list.html"

    # An import run is a record of what happened: it is viewed, never edited.
    def has_change_permission(self, request: HttpRequest, obj: ImportRun | None = None) -> bool:
        return False

    @admin.display(description=_("progress"))
    def progress(self, obj: ImportRun) -> str:
        if obj.kind == ImportRun.Kind.EVENTS:
            return format_html(
                "{} read · {} accepted · {} duplicate · {} rejected",
                obj.rows_read,
                obj.rows_created,
                obj.rows_unchanged,
                obj.rows_rejected,
            )
        return format_html(
            "{} read · {} created · {} updated · {} unchanged · {} rejected",
            obj.rows_read,
            obj.rows_created,
            obj.rows_updated,
            obj.rows_unchanged,
            obj.rows_rejected,
        )

    @admin.display(description=_("report"))
    def report_link(self, obj: ImportRun) -> str:
        if not obj.report_path or not Path(obj.report_path).is_file():
            return "—"
        url = reverse("admin:crm_importrun_report", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download the report"))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:object_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name="crm_importrun_report",
            ),
        ]
        return own + super().get_urls()

    def report_view(self, request: HttpRequest, object_id: int) -> FileResponse:
        run = ImportRun.objects.filter(pk=object_id).first()
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        report = Path(run.report_path).resolve() if run.report_path else None
        # Served only from the imports folder, whatever the database says.
        if report is None or report.parent != import_dir().resolve() or not report.is_file():
            raise Http404
        return FileResponse(
            report.open("rb"),
            as_attachment=True,
            filename=report.name,
            content_type="text/csv; charset=utf-8",
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            "title": _("Import contacts / events"),
            "imports_running": ImportRun.objects.filter(status__in=RUNNING).exists(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        run = row_for_url(ImportRun.objects.all(), object_id)
        context: dict[str, Any] = {"import_running": run is not None and run.status in RUNNING}
        if run is not None and run.consents_refused:
            # Said on the page, not only in the report: staff must not believe the file
            # re-subscribed people who had unsubscribed themselves.
            context["consents_refused_notice"] = ngettext(
                "%(count)d consent grant refused: the person withdrew consent themselves "
                "(only they can give it back: double opt-in, the preference centre or SMS "
                "START), or the address is suppressed or erased. The report names the row "
                "and the reason.",
                "%(count)d consent grants refused: the person withdrew consent themselves "
                "(only they can give it back: double opt-in, the preference centre or SMS "
                "START), or the address is suppressed or erased. The report names each row "
                "and the reason.",
                run.consents_refused,
            ) % {"count": run.consents_refused}
        return super().change_view(
            request, object_id, form_url, {**context, **(extra_context or {})}
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The upload form: store the file, record the run, import it in the background."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportUploadForm(
            request.POST or None,
            request.FILES or None,
            refused_size=refused_upload_size(request),
        )
        if request.method == "POST" and form.is_valid():
            run = self._upload(request, form)
            self.message_user(
                request,
                format_html("{} is being imported; this page shows its progress.", run.filename),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:crm_importrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload a CSV file to import"),
            "form": form,
            "opts": self.model._meta,
            "has_view_permission": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/crm/importrun/upload.html", context)

    def _upload(self, request: HttpRequest, form: ImportUploadForm) -> ImportRun:
        upload = form.cleaned_data["file"]
        with transaction.atomic():
            run = ImportRun.objects.create(
                kind=form.cleaned_data["kind"],
                filename=Path(upload.name or "upload.csv").name[:255],
                created_by=request.user if request.user.is_authenticated else None,
            )
            with import_run_upload_path(run).open("wb") as stored:
                for chunk in upload.chunks():
                    stored.write(chunk)
            import_run_execute.delay_on_commit(run.pk)
        return run
