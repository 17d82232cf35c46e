"""Admin for the customer database, one module per subject."""

from crm.admin import contacts as contacts
