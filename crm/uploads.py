"""The size limit of uploaded files (IMPORT_MAX_UPLOAD_MB; the admin CSV import is the only
upload). It runs as the first of Django's upload handlers, while the request is being read:
a file over the limit is dropped at once, so it is neither kept in memory nor written to a
temporary file, and the form says why (crm/admin/imports.py) instead of "field required"."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

# Set on the request when a file was dropped: the size of the request that carried it.
REFUSED_UPLOAD_SIZE = "cadence_refused_upload_size"


def upload_limit_bytes() -> int:
    return int(settings.IMPORT_MAX_UPLOAD_MB) * 1_000_000


def refused_upload_size(request: HttpRequest) -> int | None:
    size: int | None = getattr(request, REFUSED_UPLOAD_SIZE, None)
    return size


def upload_too_large_message(size: int) -> str:
    megabytes = f"{size / 1_000_000:,.2f}".rstrip("0").rstrip(".")
    return (
        f"This file is {megabytes} MB; files up to {settings.IMPORT_MAX_UPLOAD_MB} MB can be "
        "imported (IMPORT_MAX_UPLOAD_MB)."
    )


class UploadSizeLimitHandler(FileUploadHandler):
    """Passes every chunk on to the next handler until the file passes the limit."""

    # Not "content_length": FileUploadHandler.new_file sets that to the file's own (often
    # unknown) length.
    request_length = 0

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        self.request_length = content_length
        return None

    def _refuse(self) -> None:
        if self.request is not None:
            setattr(self.request, REFUSED_UPLOAD_SIZE, self.request_length)
        raise SkipFile  # Django drops the file and reads past the rest of it

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0
        # The whole request is over the limit by more than its form fields could take.
        if self.request_length > upload_limit_bytes() + 65_536:
            self._refuse()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > upload_limit_bytes():
            self._refuse()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file
