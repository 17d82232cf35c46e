"""Keys that group contacts who may be one person, computed the same way in Python as the
SQL blocks compute them."""

from __future__ import annotations

import re

# Mailboxes that many unrelated people share the local part of.
GENERIC_LOCAL_PARTS = frozenset(
    {
        "admin",
        "contact",
        "hello",
        "hi",
        "info",
        "mail",
        "office",
        "post",
        "sales",
        "service",
        "support",
        "team",
        "test",
    }
)
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
PHONE_TAIL = 9


def mailbox_key(email_key: str | None) -> str | None:
    """The mailbox an address delivers to: +tags dropped, and for gmail the dots too."""
    if not email_key or "@" not in email_key:
        return None
    local, _, domain = email_key.rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def local_part(email_key: str | None) -> str | None:
    """The local part without +tag and dots, as the email block groups it."""
    if not email_key or "@" not in email_key:
        return None
    return email_key.rpartition("@")[0].split("+", 1)[0].replace(".", "") or None


def phone_tail(phone: str | None) -> str | None:
    """The last digits of a number: the same subscriber number under another country code
    or written another way shares them."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[-PHONE_TAIL:] if len(digits) >= 7 else None


def external_id_key(external_id: str | None) -> str | None:
    """CUST-00042, cust_00042 and cust42 are the same id written three ways."""
    if not external_id:
        return None
    compact = re.sub(r"[^0-9a-z]", "", external_id.lower())
    return re.sub(r"(?<!\d)0+(?=\d)", "", compact) or None
