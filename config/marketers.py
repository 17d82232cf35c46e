"""The Marketers group: what a marketer may do in admin without being a superuser, declared
in one place. `crm` ensures it after every `migrate` (a post_migrate receiver), so a new
model's permissions reach marketers on the next deploy, and a database flushed by tests gets
the group back. Model names are strings, so this layer imports no app."""

from __future__ import annotations

MARKETERS_GROUP = "Marketers"

# {app label: {model name: actions}}
MARKETER_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "crm": {
        "contact": ("view", "add", "change"),
        "event": ("view", "add", "change"),
        "consentrecord": ("view",),
        "suppression": ("view", "add"),
        "doubleoptin": ("view",),
        "mergecandidate": ("view", "change"),
        "contactmerge": ("view",),
        "importrun": ("view", "add"),
        "dataquality": ("view",),
    },
    "segments": {
        "segment": ("view", "add", "change", "delete"),
        "segmentmembership": ("view",),
        "segmentsizesnapshot": ("view",),
        # Analytics are derived data: marketers read them, the analytics commands write them.
        "contactrfm": ("view",),
        "contactlifecycle": ("view",),
        "lifecyclechange": ("view",),
        "clusteringrun": ("view",),
        "contactcluster": ("view",),
        "contactprediction": ("view",),
        "predictionfit": ("view",),
        "staticlist": ("view", "add", "change", "delete"),
        "staticlistmember": ("view", "add", "delete"),
    },
    "campaigns": {
        "campaign": ("view", "add", "change"),
        "variant": ("view", "add", "change", "delete"),
        "messagetemplate": ("view", "add", "change"),
        "delivery": ("view",),
        "response": ("view",),
        "frequencycap": ("view",),
        "abdecision": ("view",),
    },
    "triggers": {
        "triggerrule": ("view", "add", "change", "delete"),
        "triggerruleversion": ("view",),
        # Firings are the ledger: marketers read them and may retry a failed one (change).
        "triggerfiring": ("view", "change"),
    },
    "journeys": {
        # Marketers build and edit journeys in admin (every save validated and versioned);
        # deleting one would take its enrollments and ledger with it, so that stays with admins.
        "journey": ("view", "add", "change"),
        "journeyversion": ("view",),
        "enrollment": ("view",),
        "steprun": ("view",),
    },
}
