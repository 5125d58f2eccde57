"""What an open socket hears: every kind of event, numbered, and how a client catches up."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile

from approvals.discussion import request_comment
from approvals.notifications import notify_transition
from approvals.services import request_act
from tests.approvals.live_support import (
    changed,
    events_until_quiet,
    next_message,
    next_of,
    session_cookie,
    socket,
)
from tests.factories import make_request
from workflows.models import Handoff
from workflows.services import handoff_claim, handoff_reassign, handoff_unclaim

pytestmark = pytest.mark.django_db(transaction=True)


def _open_handoff(req) -> Handoff:
    return Handoff.objects.for_instance(req).open().get()


def test_a_request_page_hears_every_kind_of_change_numbered_and_signed(
    requester, request_type, approver, second_approver
):
    # given a submitted request, and its requester watching its page
    req = make_request(requester=requester, request_type=request_type)
    cookie = session_cookie(requester)
    stream = f"instance.approvals.approvalrequest.{req.pk}"

    def claim() -> None:
        handoff_claim(handoff_id=_open_handoff(req).pk, actor=approver)

    def release() -> None:
        handoff_unclaim(handoff_id=_open_handoff(req).pk, actor=approver)

    def reassign() -> None:
        handoff_reassign(
            handoff_id=_open_handoff(req).pk, actor=approver, to_user=second_approver, reason="away"
        )

    def comment() -> None:
        request_comment(request_id=req.pk, author=second_approver, body="Which desk?")

    def attach() -> None:
        upload = SimpleUploadedFile("quote.txt", b"Desk: 240 EUR\n", content_type="text/plain")
        request_comment(request_id=req.pk, author=second_approver, files=[upload])

    def approve() -> None:
        request_act(request_id=req.pk, action="approve", actor=second_approver)

    steps = [
        (claim, "handoff.changed", "claim", approver),
        (release, "handoff.changed", "unclaim", approver),
        (claim, "handoff.changed", "claim", approver),
        (reassign, "handoff.changed", "reassign", approver),
        (comment, "instance.noted", "comment", second_approver),
        (attach, "instance.noted", "attach", second_approver),
        (approve, "instance.transitioned", "approve", second_approver),
    ]

    async def scenario():
        ws = socket(f"/ws/requests/{req.pk}/", cookie=cookie)
        assert (await ws.connect())[0] is True
        ready = await next_message(ws)
        head = ready["streams"][stream]
        for step, topic, action, actor in steps:
            # when someone makes the change
            await changed(step)
            # then the page hears it at once: its kind, who did it, the next number
            event = await next_of(ws, "event")
            assert (event["event"]["topic"], event["event"]["action"]) == (topic, action)
            assert event["event"]["by"] == {"id": actor.pk, "name": actor.display_name}
            assert (event["stream"], event["epoch"], event["seq"]) == (stream, ready["epoch"], head + 1)
            head += 1
        # and the last one says where the request ended up, and what people call it
        assert event["event"]["state"] == "approved"
        assert event["event"]["label"] == req.reference
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_new_notification_reaches_the_bell_of_its_recipient(requester, request_type, approver):
    req = make_request(requester=requester, request_type=request_type)
    cookie = session_cookie(requester)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        await next_message(ws)
        # when the approver approves and the notification task runs
        result = await changed(lambda: request_act(request_id=req.pk, action="approve", actor=approver))
        await changed(
            lambda: notify_transition(
                request_id=req.pk, action="approve", audit_seq=result.entry.seq, event_id="evt-1"
            )
        )
        # then the requester's own stream carries the new notification, from the approver
        events = [m for m in await events_until_quiet(ws) if m["type"] == "event"]
        bell = [m["event"] for m in events if m["event"]["topic"] == "notification.added"]
        assert len(bell) == 1
        assert (bell[0]["ref"], bell[0]["label"]) == (req.workflow_ref(), req.reference)
        assert bell[0]["by"]["name"] == approver.display_name
        assert "approved" in bell[0]["text"]
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_reconnecting_client_gets_what_it_missed_in_order(requester, request_type, approver):
    cookie = session_cookie(approver)
    first = make_request(requester=requester, request_type=request_type, title="Desk")

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        ready = await next_message(ws)
        await ws.disconnect()
        # when two more requests reach the approver's group while they are away
        await changed(lambda: make_request(requester=requester, request_type=request_type, title="Chair"))
        await changed(lambda: request_act(request_id=first.pk, action="withdraw", actor=requester))
        # and they reconnect and ask for what came after what they saw
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        await next_message(ws)
        await ws.send_json_to({"type": "sync", "epoch": ready["epoch"], "cursors": ready["streams"]})
        missed = await events_until_quiet(ws)
        # then they get exactly the missed events, each stream's numbers without a gap
        assert {m["type"] for m in missed} == {"event"}
        by_stream: dict[str, list[int]] = {}
        for message in missed:
            by_stream.setdefault(message["stream"], []).append(message["seq"])
        for name, seqs in by_stream.items():
            assert seqs == list(range(ready["streams"][name] + 1, ready["streams"][name] + 1 + len(seqs)))
        assert [m["event"]["action"] for m in missed if m["stream"].startswith("inbox.group.")] == [
            "submit",
            "withdraw",
        ]
        await ws.disconnect()

    async_to_sync(scenario)()


def test_a_client_too_far_behind_or_from_another_epoch_is_told_to_resync(
    settings, requester, request_type, approver
):
    # given a log that keeps only the last event of each stream
    settings.LIVE_LOG_LENGTH = 1
    cookie = session_cookie(approver)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        ready = await next_message(ws)
        await ws.disconnect()
        for title in ("Desk", "Chair"):
            await changed(
                lambda title=title: make_request(requester=requester, request_type=request_type, title=title)
            )
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        fresh = await next_message(ws)
        # when the client asks for two events the log no longer holds both of
        await ws.send_json_to({"type": "sync", "epoch": ready["epoch"], "cursors": ready["streams"]})
        # then it is told to re-render, with the current numbers to count on from
        resync = await next_of(ws, "resync")
        assert (resync["reason"], resync["streams"]) == ("behind", fresh["streams"])
        # when a client remembers an epoch that is over (Redis restarted without its data)
        await ws.send_json_to({"type": "sync", "epoch": "an-epoch-gone", "cursors": fresh["streams"]})
        resync = await next_of(ws, "resync")
        # then it is told to re-render too, in the current epoch
        assert (resync["reason"], resync["epoch"]) == ("epoch", fresh["epoch"])
        await ws.disconnect()

    async_to_sync(scenario)()


def test_bad_client_messages_get_an_error_naming_what_is_wrong(approver):
    cookie = session_cookie(approver)

    async def scenario():
        ws = socket("/ws/inbox/", cookie=cookie)
        await ws.connect()
        await next_message(ws)
        # when the client sends cursors that are not numbers, then the error names them
        await ws.send_json_to({"type": "sync", "epoch": "x", "cursors": {"inbox.user.1": "five"}})
        assert (await next_message(ws))["field"] == "cursors"
        # when it sends something that is not JSON, then the socket stays open and says so
        await ws.send_to(text_data="not json")
        assert (await next_message(ws))["field"] == "message"
        # and a ping is still answered
        await ws.send_json_to({"type": "ping"})
        assert (await next_message(ws))["type"] == "pong"
        await ws.disconnect()

    async_to_sync(scenario)()
