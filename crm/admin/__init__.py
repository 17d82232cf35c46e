"""Admin for the customer database, one module per subject."""

from crm.admin import api_keys as api_keys
from crm.admin import consent as consent
from crm.admin import contacts as contacts
from crm.admin import events as events
from crm.admin import imports as imports
from crm.admin import quality as quality
from crm.admin import suppression as suppression
