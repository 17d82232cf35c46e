"""The kernel's helpers, on real tables."""

import pytest

from core.batching import chunks
from core.keyset import keyset_pages
from core.zones import zone_or_none, zone_or_utc
from crm.models import Contact
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_chunks_keep_order_and_cover_every_item():
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 3)) == []


def test_chunks_refuse_a_size_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        list(chunks([1], 0))


def test_keyset_pages_visit_every_row_once_in_key_order_whatever_the_row_shape():
    ids = [ContactFactory.create().pk for _ in range(7)]
    flat = Contact.objects.values_list("pk", flat=True)
    assert list(keyset_pages(flat, size=3)) == [ids[0:3], ids[3:6], ids[6:7]]
    pairs = Contact.objects.values_list("pk", "email")
    assert [row[0] for page in keyset_pages(pairs, size=2) for row in page] == ids
    instances = Contact.objects.all()
    assert [c.pk for page in keyset_pages(instances, size=4) for c in page] == ids
    dicts = Contact.objects.values("pk")
    assert [row["pk"] for page in keyset_pages(dicts, size=5) for row in page] == ids


def test_keyset_pages_do_not_revisit_rows_changed_behind_the_cursor():
    ids = [ContactFactory.create().pk for _ in range(4)]
    seen = []
    for page in keyset_pages(
        Contact.objects.filter(is_erased=False).values_list("pk", flat=True), size=2
    ):
        seen.extend(page)
        ContactFactory.create()  # a row written while walking lands after the cursor
    assert seen[:4] == ids
    assert len(seen) == len(set(seen))


def test_zone_names_that_do_not_exist_fall_back():
    berlin = zone_or_none("Europe/Berlin")
    assert berlin is not None
    assert berlin.key == "Europe/Berlin"
    assert zone_or_none("Mars/Olympus") is None
    assert zone_or_none("") is None
    assert zone_or_utc("../etc/passwd").key == "UTC"
