"""The customer database: contacts, the consent ledger, suppression, events, and the records
that keep data quality honest (aliases, merge candidates and audits, import runs, API keys)."""

from crm.models.consent import ConsentQuerySet, ConsentRecord, DoubleOptIn, Suppression
from crm.models.contacts import MARKETING, Channel, Contact, ContactAlias, ContactAttributes
from crm.models.events import Event, EventProperties
from crm.models.operations import ApiKey, ImportRun
from crm.models.quality import ContactMerge, DataQuality, MergeCandidate

__all__ = [
    "MARKETING",
    "ApiKey",
    "Channel",
    "ConsentQuerySet",
    "ConsentRecord",
    "Contact",
    "ContactAlias",
    "ContactAttributes",
    "ContactMerge",
    "DataQuality",
    "DoubleOptIn",
    "Event",
    "EventProperties",
    "ImportRun",
    "MergeCandidate",
    "Suppression",
]
