"""What crm tells the layers above. Senders fire these with transaction.on_commit, so a
receiver never sees rows that could still roll back."""

from django.dispatch import Signal

# kwargs: contact_ids (list[int]), event_types (set[str])
events_ingested = Signal()

# kwargs: survivor_id (int), duplicate_id (int): sent inside the merge transaction, before the
# duplicate's rows move, so that apps with unique (…, contact) rows can resolve collisions.
contact_merging = Signal()

# kwargs: survivor_id (int), duplicate_uuid (UUID): sent after the merge commits.
contact_merged = Signal()

# kwargs: contact_id (int): sent after an erasure commits.
contact_erased = Signal()
