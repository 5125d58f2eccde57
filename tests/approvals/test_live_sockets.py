"""Who may open a live socket, and what it hears as memberships change while it is open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from accounts.models import Delegation
from accounts.sessions import sessions_end_everywhere
from tests.approvals.live_support import (
    changed,
    closed_with,
    events_until_quiet,
    next_message,
    next_of,
    session_cookie,
    socket,
)
from tests.factories import make_request
from workflows.models import Recipient

pytestmark = pytest.mark.django_db(transaction=True)


def _user_stream(user) -> str:
    return Recipient(user_id=user.pk).channel_group


def _group_stream(group) -> str:
    return Recipient(group_id=group.pk).channel_group


def _own_streams(user) -> set[str]:
    """A user's stream and those of all their groups (roles are groups too)."""
    return {_user_stream(user)} | {_group_stream(g) for g in user.groups.all()}


def test_an_anonymous_socket_is_closed_4401():
    async def scenario():
        # when nobody signed in opens the inbox socket
        connected, code = await socket("/ws/inbox/").connect()
        # then it is refused with 4401
        assert (connected, code) == (False, 4401)

    async_to_sync(scenario)()


def test_a_foreign_origin_is_refused(approver):
    cookie = session_cookie(approver)

    async def scenario():
        # when a page of another site opens the socket with the person's cookie
        ws = socket("/ws/inbox/", cookie=cookie, origin=b"https://evil.example")
        connected, _ = await ws.connect()
        # then it is refused before any consumer runs
        assert connected is False

    async_to_sync(scenario)()


def test_an_unknown_path_is_closed_4404_not_an_error(approver):
    cookie = session_cookie(approver)

    async def scenario():
        # when a socket is opened on a path no consumer serves
        connected, code = await socket("/ws/nothing/here/", cookie=cookie).connect()
        # then it is closed cleanly with 4404
        assert (connected, code) == (False, 4404)

    async_to_sync(scenario)()


def test_a_request_page_socket_is_only_for_those_who_may_see_it(requester, request_type, approver, outsider):
    req = make_request(requester=requester, request_type=request_type)
    outsider_cookie, approver_cookie = session_cookie(outsider), session_cookie(approver)

    async def scenario():
        # when an outsider opens the request's socket, then it is refused with 4403
        assert await socket(f"/ws/requests/{req.pk}/", cookie=outsider_cookie).connect() == (False, 4403)
        # and a request that does not exist is refused the same way
        assert await socket("/ws/requests/999999/", cookie=approver_cookie).connect() == (False, 4403)
        # when the approver opens it, then it is ready on the request's stream only
        ws = socket(f"/ws/requests/{req.pk}/", cookie=approver_cookie)
        assert (await ws.connect())[0] is True
        ready = await next_message(ws)
        assert ready["type"] == "ready"
        assert list(ready["streams"]) == [f"instance.approvals.approvalrequest.{req.pk}"]
        await ws.disconnect()

    async_to_sync(scenario)()


def test_the_inbox_socket_hears_the_user_and_their_groups(approver, approver_group):
    cookie = session_cookie(approver)
    theirs = _own_streams(approver)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        assert (await ws.connect())[0] is True
        ready = await next_message(ws)
        # then it names its epoch and the head of each stream it hears
        assert ready["type"] == "ready"
        assert ready["epoch"]
        assert set(ready["streams"]) == theirs
        assert _group_stream(approver_group) in ready["streams"]
        await ws.disconnect()

    async_to_sync(scenario)()


def test_joining_and_leaving_a_group_takes_effect_on_an_open_socket(
    requester, request_type, approver_group, outsider
):
    cookie = session_cookie(outsider)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        assert set((await next_message(ws))["streams"]) == {_user_stream(outsider)}
        # when the outsider is added to the reviewers while connected
        await changed(lambda: outsider.groups.add(approver_group))
        # then the socket re-subscribes and says so, within the 5 seconds allowed
        resync = await next_of(ws, "resync", timeout=5)
        assert resync["reason"] == "subscriptions"
        assert _group_stream(approver_group) in resync["streams"]
        # and a request submitted to the group now reaches them
        await changed(lambda: make_request(requester=requester, request_type=request_type))
        event = await next_of(ws, "event")
        assert event["stream"] == _group_stream(approver_group)
        assert event["event"]["topic"] == "instance.transitioned"
        # when they are removed from the group
        await changed(lambda: approver_group.user_set.remove(outsider))
        resync = await next_of(ws, "resync")
        assert set(resync["streams"]) == {_user_stream(outsider)}
        # then the group's next item does not reach them
        await changed(lambda: make_request(requester=requester, request_type=request_type, title="Chair"))
        assert [m for m in await events_until_quiet(ws) if m["type"] == "event"] == []
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_delegation_opening_and_ending_changes_what_an_open_socket_hears(
    approver, approver_group, outsider
):
    cookie = session_cookie(outsider)
    theirs, approvers = _own_streams(outsider), _own_streams(approver)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        await next_message(ws)
        # when the approver delegates to the outsider (out of office from now on)
        delegation = await changed(lambda: Delegation.objects.create(delegator=approver, delegate=outsider))
        # then the outsider's socket hears the approver's and the approver's group's streams
        resync = await next_of(ws, "resync")
        assert set(resync["streams"]) == theirs | approvers
        assert _group_stream(approver_group) in resync["streams"]

        # when the delegation is revoked, then they hear only their own again
        def revoke() -> None:
            delegation.revoked_at = timezone.now()
            delegation.save(update_fields=["revoked_at"])

        await changed(revoke)
        assert set((await next_of(ws, "resync"))["streams"]) == theirs
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_delegation_ending_on_its_own_is_noticed_when_it_ends(approver, approver_group, outsider):
    # given a delegation that ends in a second and a half, nobody touching it again
    Delegation.objects.create(
        delegator=approver, delegate=outsider, ends_at=timezone.now() + timedelta(seconds=1.5)
    )
    cookie = session_cookie(outsider)
    theirs = _own_streams(outsider)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        assert _user_stream(approver) in (await next_message(ws))["streams"]
        # then once it has ended the socket drops the approver's streams by itself
        resync = await next_of(ws, "resync", timeout=5)
        assert set(resync["streams"]) == theirs
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("ending", ["deactivated", "logged out", "signed out everywhere"])
def test_a_user_who_may_no_longer_listen_is_cut_off(ending, approver):
    cookie = session_cookie(approver)
    session_key = cookie.split("=", 1)[1]

    def end() -> None:
        if ending == "deactivated":
            approver.is_active = False
            approver.save()
        elif ending == "logged out":
            browser = Client()
            browser.cookies["sessionid"] = session_key
            browser.logout()  # Django's logout: the session row goes, user_logged_out is sent
            assert not Session.objects.filter(session_key=session_key).exists()
        else:
            sessions_end_everywhere(approver)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        await next_message(ws)
        # when the person's access ends
        await changed(end)
        # then the open socket is closed with 4401 within 5 seconds
        assert await closed_with(ws, timeout=5) == 4401

    async_to_sync(scenario)()
