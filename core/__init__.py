"""The kernel every app may use: database helpers, batching, keyset pagination, time zones,
admin building blocks and chart rendering.

It sits below every domain app (crm, segments, campaigns, triggers, journeys) and imports
none of them: only Django and the standard library. Code lands here when two apps would
otherwise each keep their own copy of it."""
