"""The demo: data a newcomer sees after `make run`, and the scripted `make demo` flow.

Each issue extends demo_run until it shows the whole flow: import, events, segments, triggers
firing, messages in the outbox, responses and an A/B result. The demo data's timestamps are
shifted so that its latest event happened half an hour ago, whenever the demo runs.

`run` holds the script, one function per chapter: `chapters` (import, duplicates, data
quality, segments, triggers, a broadcast, totals), `ingest` (events over HTTP), `obeyed`
(unsubscribe, bounce, STOP), `abtest` and `journey` (the browse-follow-up journey, also
created with the catalogue for `make run`). `data` loads the demo shop, `server` runs the
application and a worker for the script to talk to, `report` formats what it shows."""
