"""Segment conditions: entered or exited a segment recently (from the membership history
that segments.signals.membership_changed announces), currently a member or not."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import Q

from core.conditions import Window
from segments.models import Segment, SegmentMembership
from triggers.conditions.base import ConditionType, Expression, conditions
from triggers.facts import Need, SegmentNeed
from triggers.types import MemberOptions, RecentOptions


class SegmentSlugField(forms.SlugField):
    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not Segment.objects.filter(slug=value).exists():
            raise forms.ValidationError(f"no segment with the slug {value!r}.")


class MemberForm(forms.Form):
    segment = SegmentSlugField(help_text="A segment's slug, e.g. email-subscribers")


class RecentForm(MemberForm):
    hours = forms.IntegerField(min_value=1, max_value=24 * 366, help_text="e.g. 24")


@conditions.register
class InSegment(ConditionType[MemberOptions]):
    id = "in_segment"
    label = "is a member of {segment}"
    form = MemberForm

    def facts_needed(self, options: MemberOptions) -> list[Need]:
        return [SegmentNeed(options["segment"])]

    def compile(self, options: MemberOptions) -> Expression:
        return {SegmentNeed(options["segment"]).member_key: True}

    def candidates(self, options: MemberOptions, *, now: dt.datetime) -> Q | None:
        members = SegmentMembership.objects.filter(
            segment__slug=options["segment"], exited_at__isnull=True
        ).values("contact_id")
        return Q(id__in=members)


@conditions.register
class NotInSegment(ConditionType[MemberOptions]):
    id = "not_in_segment"
    label = "is not a member of {segment}"
    form = MemberForm

    def facts_needed(self, options: MemberOptions) -> list[Need]:
        return [SegmentNeed(options["segment"])]

    def compile(self, options: MemberOptions) -> Expression:
        return {SegmentNeed(options["segment"]).member_key: False}


@conditions.register
class EnteredSegment(ConditionType[RecentOptions]):
    id = "entered_segment"
    label = "entered {segment} in the last {hours} hours (and is still in)"
    form = RecentForm
    time_dependent = True

    def facts_needed(self, options: RecentOptions) -> list[Need]:
        return [SegmentNeed(options["segment"])]

    def compile(self, options: RecentOptions) -> Expression:
        need = SegmentNeed(options["segment"])
        return {
            "$and": [
                {need.member_key: True},
                {"$lte": {need.entered_key: int(options["hours"])}},
            ]
        }

    def candidates(self, options: RecentOptions, *, now: dt.datetime) -> Q | None:
        since = Window.from_options(options).start(now)
        entered = SegmentMembership.objects.filter(
            segment__slug=options["segment"], exited_at__isnull=True, entered_at__gte=since
        ).values("contact_id")
        return Q(id__in=entered)


@conditions.register
class ExitedSegment(ConditionType[RecentOptions]):
    id = "exited_segment"
    label = "left {segment} in the last {hours} hours (and has not come back)"
    form = RecentForm
    time_dependent = True

    def facts_needed(self, options: RecentOptions) -> list[Need]:
        return [SegmentNeed(options["segment"])]

    def compile(self, options: RecentOptions) -> Expression:
        need = SegmentNeed(options["segment"])
        return {
            "$and": [
                {need.member_key: False},
                {"$lte": {need.exited_key: int(options["hours"])}},
            ]
        }

    def candidates(self, options: RecentOptions, *, now: dt.datetime) -> Q | None:
        since = Window.from_options(options).start(now)
        exited = SegmentMembership.objects.filter(
            segment__slug=options["segment"], exited_at__gte=since
        ).values("contact_id")
        return Q(id__in=exited)
