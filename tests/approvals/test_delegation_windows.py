"""Delegation windows open and close on time: items reach the delegate while one is open,
return when it ends, and both people's open inboxes are told at each edge, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Delegation
from approvals.selectors import InboxFilter, inbox_page
from approvals.timers import delegation_edges_announce
from tests.approvals.conftest import World
from workflows.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _delegated(world: World) -> list[int]:
    page = inbox_page(user=world.user("other_approver"), filters=InboxFilter(view="delegated"))
    return [row.handoff.pk for row in page.rows]


def _edges(world: World, action: str) -> list[str]:
    return sorted(
        OutboxEvent.objects.filter(payload__action=action, payload__topic="delegation.changed").values_list(
            "destination", flat=True
        )
    )


def _both(world: World) -> list[str]:
    return sorted(f"inbox.user.{world.user(r).pk}" for r in ("approver", "other_approver"))


def test_items_reach_the_delegate_from_the_start_and_return_at_the_end(world: World) -> None:
    # given alex's item and a delegation to fiona that starts in an hour and ends in three
    handoff = world.claimed_handoff
    now = timezone.now()
    delegation = Delegation.objects.create(
        delegator=world.user("approver"),
        delegate=world.user("other_approver"),
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=3),
    )
    # then before the start fiona does not see it, and nothing is announced
    assert _delegated(world) == []
    assert delegation_edges_announce(now=now).total == 0
    # when the start passes: she sees it, and both inboxes are told once
    Delegation.objects.filter(pk=delegation.pk).update(starts_at=now - timedelta(minutes=1))
    assert _delegated(world) == [handoff.pk]
    first = delegation_edges_announce(now=now)
    again = delegation_edges_announce(now=now + timedelta(minutes=5))
    assert (first.fired["delegation_started"], again.total) == (1, 0)
    assert _edges(world, "delegation_started") == _both(world)
    # when the end passes: the item is back with alex alone, and the end is told once
    Delegation.objects.filter(pk=delegation.pk).update(ends_at=now)
    assert _delegated(world) == []
    ended = delegation_edges_announce(now=now + timedelta(seconds=1))
    assert (
        ended.fired["delegation_ended"],
        delegation_edges_announce(now=now + timedelta(hours=9)).total,
    ) == (1, 0)
    assert _edges(world, "delegation_ended") == _both(world)


def test_overlapping_windows_keep_the_items_with_the_delegate_until_the_last_ends(world: World) -> None:
    handoff = world.claimed_handoff
    now = timezone.now()
    first = Delegation.objects.create(
        delegator=world.user("approver"),
        delegate=world.user("other_approver"),
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(hours=1),
    )
    second = Delegation.objects.create(
        delegator=world.user("approver"),
        delegate=world.user("other_approver"),
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=4),
    )
    assert _delegated(world) == [handoff.pk]  # once, though two delegations reach it
    # when the first ends, the second still holds
    Delegation.objects.filter(pk=first.pk).update(ends_at=now - timedelta(seconds=1))
    assert _delegated(world) == [handoff.pk]
    report = delegation_edges_announce(now=now)
    assert report.fired == {"delegation_ended": 1, "delegation_started": 1}
    # when the second ends too, the item is gone from the delegate
    Delegation.objects.filter(pk=second.pk).update(ends_at=now - timedelta(seconds=1))
    assert _delegated(world) == []


def test_a_window_that_opened_and_closed_between_scans_is_announced_as_ended_only(world: World) -> None:
    now = timezone.now()
    Delegation.objects.create(
        delegator=world.user("approver"),
        delegate=world.user("other_approver"),
        starts_at=now - timedelta(hours=3),
        ends_at=now - timedelta(hours=1),
    )
    assert delegation_edges_announce(now=now).fired == {"delegation_ended": 1}


def test_a_delegation_revoked_before_it_started_is_never_announced(world: World) -> None:
    now = timezone.now()
    Delegation.objects.create(
        delegator=world.user("approver"),
        delegate=world.user("other_approver"),
        starts_at=now + timedelta(hours=1),
        revoked_at=now,
    )
    assert delegation_edges_announce(now=now + timedelta(hours=2)).total == 0
    assert delegation_edges_announce(now=now + timedelta(hours=3)).total == 0
