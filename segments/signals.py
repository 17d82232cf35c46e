"""What segments tell the layers above (triggers listens)."""

from django.dispatch import Signal

# kwargs: segment_id (int), entered_ids (list[int]), exited_ids (list[int]): contact ids that
# entered and left the segment in one refresh batch (at most SEGMENT_REFRESH_BATCH_SIZE
# contacts were checked in it). Sent with transaction.on_commit, once per batch that changed
# something, so a receiver never sees memberships that could still roll back.
membership_changed = Signal()
