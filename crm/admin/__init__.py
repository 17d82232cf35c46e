"""Admin for the customer database, one module per subject."""

from crm.admin import contacts as contacts
from crm.admin import imports as imports
from crm.admin import quality as quality
