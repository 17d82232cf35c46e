"""The error shape every way in (API, CSV import) reports bad input with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one field of the input.

    `field` is a path into the input, e.g. "email", "contact.phone", "consent[0].channel";
    the caller prefixes it with where the input came from ("events[3].", "row 12: ").
    `message` is for a human and names the bad value.
    """

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message
