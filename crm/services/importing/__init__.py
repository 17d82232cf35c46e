"""CSV import of contacts and events, streamed row by row in batches, with a per-row report.

The file is never loaded whole: bytes are decoded one line at a time, the csv module turns
them into records (quoted commas and newlines included), and rows are saved in batches of
BATCH_SIZE through the same services the API uses. Every problem lands in a report CSV under
var/imports/ naming the row (as a spreadsheet numbers it: the header is row 1), the column,
the value and the reason; a bad row never stops the good ones. A second run of the same file
changes nothing. docs/import.md is the user's guide to all of this.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.utils import timezone

from crm.models import ImportRun
from crm.services.importing.base import Importer
from crm.services.importing.contacts import ContactImporter
from crm.services.importing.events import EventImporter
from crm.services.importing.reading import ImportFileError, read_records
from crm.services.importing.report import (
    Counts,
    Progress,
    Report,
    TextOutput,
    import_dir,
    import_run_report_path,
    import_run_upload_path,
)

__all__ = [
    "ImportFileError",
    "TextOutput",
    "import_contacts_file",
    "import_dir",
    "import_events_file",
    "import_run_execute",
    "import_run_report_path",
    "import_run_upload_path",
]

logger = logging.getLogger(__name__)


def import_contacts_file(
    *, path: Path | str, import_run: ImportRun | None = None, stdout: TextOutput | None = None
) -> ImportRun:
    """Import contacts from a CSV file; see docs/import.md for the columns. Returns the run,
    done or failed (with `error` saying why); the report is at run.report_path."""
    return _import_file(
        kind=ImportRun.Kind.CONTACTS, path=Path(path), import_run=import_run, stdout=stdout
    )


def import_events_file(
    *, path: Path | str, import_run: ImportRun | None = None, stdout: TextOutput | None = None
) -> ImportRun:
    """Import events from a CSV file, creating the contacts they name when new."""
    return _import_file(
        kind=ImportRun.Kind.EVENTS, path=Path(path), import_run=import_run, stdout=stdout
    )


def import_run_execute(*, import_run_id: int) -> ImportRun | None:
    """Run an uploaded import (the Celery task's body). A run already finished is left as
    it is, so a redelivered task does no harm; a rerun would change nothing anyway."""
    run = ImportRun.objects.filter(pk=import_run_id).first()
    if run is None or run.status in (ImportRun.Status.DONE, ImportRun.Status.FAILED):
        return run
    return _import_file(
        kind=run.kind, path=import_run_upload_path(run), import_run=run, stdout=None
    )


def _import_file(
    *, kind: str, path: Path, import_run: ImportRun | None, stdout: TextOutput | None
) -> ImportRun:
    run = import_run or ImportRun.objects.create(kind=kind, filename=path.name)
    run.kind = kind
    run.status = ImportRun.Status.RUNNING
    run.started_at = timezone.now()
    run.finished_at = None
    run.error = ""
    report_path = import_run_report_path(run)
    run.report_path = str(report_path)
    run.save()
    report = Report(report_path)
    counts = Counts()
    progress = Progress(run=run, stdout=stdout)
    try:
        with path.open("rb") as binary:
            importer: Importer = (
                ContactImporter(run=run, report=report, counts=counts)
                if kind == ImportRun.Kind.CONTACTS
                else EventImporter(run=run, report=report, counts=counts)
            )
            importer.process(read_records(binary), progress=progress)
    except (ImportFileError, OSError) as exc:
        run.status = ImportRun.Status.FAILED
        run.error = str(exc)
        report.add(row=0, column="", value="", reason=str(exc), outcome="file", line="")
    except Exception as exc:
        # Rows already saved stay saved (a rerun skips them); the run says what went wrong.
        logger.exception("Import run %s of %s failed", run.pk, path)
        run.status = ImportRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"
        report.close()
        _finish(run, counts)
        raise
    else:
        run.status = ImportRun.Status.DONE
    report.close()
    progress.finish(counts)
    _finish(run, counts)
    if stdout is not None:
        stdout.write(f"Report: {report_path} ({report.lines:,} lines)\n")
    return run


def _finish(run: ImportRun, counts: Counts) -> None:
    for name, value in counts.fields().items():
        setattr(run, name, value)
    run.finished_at = timezone.now()
    run.save()
