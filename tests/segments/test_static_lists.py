"""Static lists in segments: the move from triggers keeps every row, the admin and the
marketers' rights follow them, and trigger actions still record who added a contact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps.registry import Apps
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from config.marketers import MARKETERS_GROUP
from segments.models import StaticList, StaticListMember
from tests.factories import ContactFactory
from tests.triggers.helpers import make_rule
from triggers.actions import actions
from triggers.models import TriggerFiring

BEFORE_THE_MOVE = [("triggers", "0002_pending_order_index")]


def _firing() -> TriggerFiring:
    return TriggerFiring.objects.create(
        rule=make_rule(),
        rule_version=1,
        contact=ContactFactory.create(),
        occurrence_key="once",
        fired_at=timezone.now(),
        batch="00000000-0000-0000-0000-000000000001",
    )


def _migrate(targets: list[tuple[str, str]]) -> Any:
    """The historical apps at `targets` (Any: mypy's Django plugin knows only today's models)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    apps: Apps = executor.loader.project_state(targets).apps
    return apps


@pytest.fixture
def latest_schema_after() -> Iterator[list[tuple[str, str]]]:
    """The leaf migrations, applied again after the test whatever it left behind."""
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    yield leaves
    _migrate(leaves)


@pytest.mark.django_db(transaction=True)
def test_the_move_to_segments_keeps_every_list_and_member_with_its_id(
    latest_schema_after: list[tuple[str, str]],
) -> None:
    firing = _firing()
    ada, bob = ContactFactory.create(), ContactFactory.create()
    old = _migrate(BEFORE_THE_MOVE)
    OldList = old.get_model("triggers", "StaticList")
    OldMember = old.get_model("triggers", "StaticListMember")
    vip = OldList.objects.create(id=41, name="VIP", slug="vip", description="Big spenders")
    lapsed = OldList.objects.create(id=7, name="Lapsed", slug="lapsed")
    OldMember.objects.create(id=90, static_list=vip, contact_id=ada.pk)
    OldMember.objects.create(
        id=91, static_list=vip, contact_id=bob.pk, added_by_firing_id=firing.pk
    )
    OldMember.objects.create(id=92, static_list=lapsed, contact_id=bob.pk)

    _migrate(latest_schema_after)

    assert list(StaticList.objects.order_by("pk").values_list("pk", "slug", "description")) == [
        (7, "lapsed", ""),
        (41, "vip", "Big spenders"),
    ]
    assert list(
        StaticListMember.objects.order_by("pk").values_list(
            "pk", "static_list_id", "contact_id", "added_by_firing_id"
        )
    ) == [(90, 41, ada.pk, None), (91, 41, bob.pk, firing.pk), (92, 7, bob.pk, None)]
    # New rows are numbered after the copied ones (PostgreSQL keeps a separate sequence).
    assert StaticList.objects.create(name="New", slug="new").pk > 41
    assert StaticListMember.objects.create(static_list_id=7, contact=ada).pk > 92


@pytest.mark.django_db(transaction=True)
def test_reversing_the_move_puts_the_lists_back_in_triggers(
    latest_schema_after: list[tuple[str, str]],
) -> None:
    firing = _firing()
    ada = ContactFactory.create()
    vip = StaticList.objects.create(name="VIP", slug="vip")
    StaticListMember.objects.create(static_list=vip, contact=ada, added_by_firing_id=firing.pk)

    old = _migrate(BEFORE_THE_MOVE)

    OldMember = old.get_model("triggers", "StaticListMember")
    assert list(
        OldMember.objects.values_list("static_list__slug", "contact_id", "added_by_firing_id")
    ) == [("vip", ada.pk, firing.pk)]


@pytest.mark.django_db
def test_a_contact_is_on_a_static_list_once() -> None:
    from django.db import IntegrityError, transaction

    vip = StaticList.objects.create(name="VIP", slug="vip")
    ada = ContactFactory.create()
    StaticListMember.objects.create(static_list=vip, contact=ada)
    with pytest.raises(IntegrityError), transaction.atomic():
        StaticListMember.objects.create(static_list=vip, contact=ada)


@pytest.mark.django_db
def test_adding_by_a_rule_records_the_firing_that_added_the_contact() -> None:
    vip = StaticList.objects.create(name="VIP", slug="vip")
    firing = _firing()

    actions["add_to_list"].run({"list": "vip"}, firing=firing, contact_id=firing.contact_id)

    member = StaticListMember.objects.get(static_list=vip)
    assert (member.contact_id, member.added_by_firing_id) == (firing.contact_id, firing.pk)


@pytest.mark.django_db
def test_marketers_keep_their_rights_on_static_lists_under_segments() -> None:
    held = set(
        Group.objects.get(name=MARKETERS_GROUP)
        .permissions.filter(content_type__app_label="segments", codename__contains="staticlist")
        .values_list("codename", flat=True)
    )
    assert held == {
        "view_staticlist",
        "add_staticlist",
        "change_staticlist",
        "delete_staticlist",
        "view_staticlistmember",
        "add_staticlistmember",
        "delete_staticlistmember",
    }


@pytest.mark.django_db
def test_the_list_admin_shows_member_counts_and_finds_lists_by_name(
    marketer_client: Client,
) -> None:
    vip = StaticList.objects.create(name="VIP callback", slug="vip-callback")
    StaticList.objects.create(name="Lapsed", slug="lapsed")
    StaticListMember.objects.bulk_create(
        StaticListMember(static_list=vip, contact=ContactFactory.create()) for _ in range(3)
    )
    url = reverse("admin:segments_staticlist_changelist")

    response = marketer_client.get(url, {"q": "vip"})

    assert response.status_code == 200
    shown: Any = response.context["cl"].result_list
    assert [(row.name, row.member_total) for row in shown] == [("VIP callback", 3)]
    assert '<td class="field-member_count">3</td>' in response.content.decode()


@pytest.mark.django_db
def test_a_marketer_adds_a_static_list_with_a_member_in_admin(marketer_client: Client) -> None:
    ada = ContactFactory.create()

    response = marketer_client.post(
        reverse("admin:segments_staticlist_add"),
        {
            "name": "VIP callback",
            "slug": "vip-callback",
            "description": "",
            "members-TOTAL_FORMS": "1",
            "members-INITIAL_FORMS": "0",
            "members-MIN_NUM_FORMS": "0",
            "members-MAX_NUM_FORMS": "1000",
            "members-0-contact": str(ada.pk),
        },
    )

    assert response.status_code == 302
    member = StaticListMember.objects.get(static_list__slug="vip-callback")
    assert (member.contact_id, member.added_by_firing_id) == (ada.pk, None)
