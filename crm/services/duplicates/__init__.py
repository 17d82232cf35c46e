"""Finding contacts that are likely the same person, for review as MergeCandidate rows.

Exact matches on email, phone or external id never get here: the database keeps those
unique and contact_upsert merges at write time. What is left are near misses: a typo in a
name with the same subscriber number, the same mailbox at another domain, gmail's dots and
+tags, CUST-00042 against cust00042, an old address kept as an alias.

Never all pairs. Blocking in SQL groups contacts by a cheap key (phone tail, email local
part, last name + first initial, external id without punctuation, alias equal to someone's
identifier); only contacts sharing a key are paired, blocks larger than `max_block` are
skipped as not telling (a thousand "smith j" are not a thousand duplicates), and pairs are
scored with rapidfuzz in batches. Re-running is idempotent: a pair is one row (contact_a <
contact_b), an open candidate is re-scored, and a dismissed pair is never proposed again.

`keys` computes the blocking keys in Python, `scoring` scores a pair from what is known of
both contacts, `blocking` groups contacts by those keys in SQL, `detection` runs the find
command's pass and saves candidates, `candidates` re-scores and dismisses open ones.
"""
