"""A delegate's socket hears of the delegator's items only as far as the delegation reaches.

The delegate hears the delegator's streams; an event of an item outside the delegation's
scope reaches them as a bare `skip` of its number (no reference, action or actor), so the
client's cursor stays whole and it never re-syncs for nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from accounts.models import Delegation
from approvals.services import request_act
from tests.approvals.live_support import (
    changed,
    events_until_quiet,
    next_message,
    next_of,
    session_cookie,
    socket,
)
from tests.factories import RequestTypeFactory, make_request
from workflows.models import Recipient
from workflows.subscriptions import Reach, event_allowed

pytestmark = pytest.mark.django_db(transaction=True)


def _numbers_by_stream(frames: list[dict[str, Any]]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for frame in frames:
        if frame["type"] in ("event", "skip"):
            found.setdefault(frame["stream"], []).append(frame["seq"])
    return found


def _assert_contiguous(frames: list[dict[str, Any]], heads: dict[str, int]) -> None:
    """Every stream's numbers follow on from `heads` without a hole (what keeps the
    client's cursor whole: live.js re-syncs on a hole)."""
    for stream, seqs in _numbers_by_stream(frames).items():
        assert seqs == list(range(heads[stream] + 1, heads[stream] + 1 + len(seqs))), stream


@pytest.fixture
def other_type(approver_group):
    """A second type reviewed by the same group, so both types' items share its stream."""
    return RequestTypeFactory.create(slug="travel", name="Travel", approver_group=approver_group)


def test_a_scoped_delegate_hears_items_of_its_types_and_only_a_skip_of_the_others(
    requester, request_type, other_type, approver, approver_group, outsider
):
    # given the approver delegated only the "general" type to the outsider
    Delegation.objects.create(delegator=approver, delegate=outsider, scope=[request_type.slug])
    cookie = session_cookie(outsider)
    group_stream = Recipient(group_id=approver_group.pk).channel_group

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        ready = await next_message(ws)
        assert group_stream in ready["streams"]
        # when a request of each type reaches the approver's group
        inside = await changed(lambda: make_request(requester=requester, request_type=request_type))
        outside = await changed(lambda: make_request(requester=requester, request_type=other_type))
        frames = await events_until_quiet(ws)
        # then the outsider hears the general one in full
        events = [f["event"] for f in frames if f["type"] == "event"]
        assert [(e["ref"], e["action"]) for e in events] == [(inside.workflow_ref(), "submit")]
        assert events[0]["scope"] == request_type.slug
        # and of the travel one only that its number passed: nothing names it
        skips = [f for f in frames if f["type"] == "skip"]
        assert [(s["stream"], set(s)) for s in skips] == [(group_stream, {"type", "stream", "epoch", "seq"})]
        assert outside.workflow_ref() not in repr(frames)
        assert outside.reference not in repr(frames)
        # and the group stream's numbers have no hole, so the client needs no re-sync
        _assert_contiguous(frames, ready["streams"])
        assert [f["type"] for f in frames if f["stream"] == group_stream] == ["event", "skip"]
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_delegation_of_everything_hears_items_of_every_type(
    requester, request_type, other_type, approver, approver_group, outsider
):
    # given the approver delegated all their work to the outsider
    Delegation.objects.create(delegator=approver, delegate=outsider)
    cookie = session_cookie(outsider)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        ready = await next_message(ws)
        # when a request of each type reaches the approver's group
        first = await changed(lambda: make_request(requester=requester, request_type=request_type))
        second = await changed(lambda: make_request(requester=requester, request_type=other_type))
        frames = await events_until_quiet(ws)
        # then the outsider hears both, in full, numbered without a hole
        assert {f["type"] for f in frames} == {"event"}
        assert [f["event"]["ref"] for f in frames] == [first.workflow_ref(), second.workflow_ref()]
        _assert_contiguous(frames, ready["streams"])
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_scoped_delegate_catching_up_gets_skips_in_place_and_no_resync(
    requester, request_type, other_type, approver, outsider
):
    # given a delegation of "general" only, and the outsider's socket closed a while
    Delegation.objects.create(delegator=approver, delegate=outsider, scope=[request_type.slug])
    cookie = session_cookie(outsider)
    inside = make_request(requester=requester, request_type=request_type, submit=False)
    outside = make_request(requester=requester, request_type=other_type, submit=False)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        ready = await next_message(ws)
        await ws.disconnect()
        # when both are submitted while they are away
        await changed(lambda: request_act(request_id=outside.pk, action="submit", actor=requester))
        await changed(lambda: request_act(request_id=inside.pk, action="submit", actor=requester))
        # and they reconnect and ask for what came after what they saw
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        await next_message(ws)
        await ws.send_json_to({"type": "sync", "epoch": ready["epoch"], "cursors": ready["streams"]})
        missed = await events_until_quiet(ws)
        # then the out-of-scope submission comes back as a skip, in its place, and the
        # general one in full: the numbers are whole and nothing asks for a re-sync
        assert [f["type"] for f in missed] == ["skip", "event"]
        assert missed[1]["event"]["ref"] == inside.workflow_ref()
        assert outside.workflow_ref() not in repr(missed)
        _assert_contiguous(missed, ready["streams"])
        # and a second sync from where the client now stands finds nothing missing
        cursors = {**ready["streams"], **{s: seqs[-1] for s, seqs in _numbers_by_stream(missed).items()}}
        await ws.send_json_to({"type": "sync", "epoch": ready["epoch"], "cursors": cursors})
        assert await events_until_quiet(ws) == []
        await ws.disconnect()

    async_to_sync(scenario)()


def test_narrowing_a_delegation_while_connected_re_renders_and_filters_from_then_on(
    requester, request_type, other_type, approver, outsider
):
    # given a delegation of everything, the outsider's socket open
    delegation = Delegation.objects.create(delegator=approver, delegate=outsider)
    cookie = session_cookie(outsider)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        await next_message(ws)

        # when the approver narrows it to "general"
        def narrow() -> None:
            delegation.scope = [request_type.slug]
            delegation.save(update_fields=["scope"])

        await changed(narrow)
        # then the page is told to re-render (its streams are the same, what it may see is not)
        resync = await next_of(ws, "resync")
        assert resync["reason"] == "subscriptions"
        # and a travel request reaches it only as a skip
        outside = await changed(lambda: make_request(requester=requester, request_type=other_type))
        frames = await events_until_quiet(ws)
        assert {f["type"] for f in frames} == {"skip"}
        assert outside.workflow_ref() not in repr(frames)
        _assert_contiguous(frames, resync["streams"])
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_delegation_never_relays_the_delegators_own_items_nor_what_is_about_no_item():
    # given a delegation of everything from person 7 and one of "general" from person 8
    everything, general = Reach(delegator_id=7, keys=None), Reach(delegator_id=8, keys=frozenset({"general"}))
    # then person 7's own item is not relayed through their delegation, another's is
    assert not everything.allows({"ref": "r:1", "scope": "general", "owner": "7"})
    assert everything.allows({"ref": "r:1", "scope": "general", "owner": "9"})
    # and an item of no type reaches only through a delegation of everything
    assert everything.allows({"ref": "r:1", "scope": None, "owner": "9"})
    assert not general.allows({"ref": "r:1", "scope": None, "owner": "9"})
    # and news about no item (the delegator's other delegations) passes through none
    assert not everything.allows({"topic": "delegation.changed", "delegate": 12})
    # and a stream of one's own relays everything; one heard through both, what either reaches
    assert event_allowed(None, {"topic": "delegation.changed"})
    assert event_allowed((everything, general), {"ref": "r:1", "scope": "general", "owner": "7"})
    assert not event_allowed((general,), {"ref": "r:1", "scope": "travel", "owner": "9"})
