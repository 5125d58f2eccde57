"""A delegate's open inbox in real Chromium: items beyond the delegation pass by unseen,
and the page's stream cursor stays whole (no re-render, no re-sync for them)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, WebSocket, expect

from accounts.models import Delegation
from accounts.roles import APPROVERS
from tests.browser.test_live import _elsewhere, _listening, _log_in, _row, _world
from tests.factories import RequestTypeFactory, UserFactory, make_request
from workflows.models import Handoff
from workflows.services import handoff_claim

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_a_scoped_delegates_inbox_skips_other_types_and_shows_its_own_live(
    new_page: Callable[[], Page],
) -> None:
    # given Alex delegated only "equipment" to Olga, and the reviewers also review "travel"
    equipment, reviewers, people = _world()
    travel = RequestTypeFactory.create(slug="travel", name="Travel", approver_group=reviewers)
    olga_user = UserFactory.create(
        username="olga",
        first_name="Olga",
        last_name="Delegate",
        member_of=[people["alex"].groups.get(name=APPROVERS)],
    )
    _elsewhere(
        lambda: Delegation.objects.create(
            delegator=people["alex"], delegate=olga_user, scope=[equipment.slug]
        )
    )
    olga = new_page()
    sent: list[dict[str, object]] = []
    received: list[dict[str, object]] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framesent", lambda frame: sent.append(json.loads(frame)))
        socket.on("framereceived", lambda frame: received.append(json.loads(frame)))

    olga.on("websocket", watch)
    _log_in(olga, "olga", "Olga Delegate")
    _listening(olga, "/inbox/")
    refreshed = olga.evaluate("document.body.dataset.liveRefreshed || '0'")

    # when a travel request reaches the reviewers
    trip = _elsewhere(lambda: make_request(requester=people["rita"], request_type=travel, title="Trip"))
    olga.wait_for_timeout(1_000)
    # then Olga's page was told only that a number passed: no notice, no re-render, no sync
    assert [m["type"] for m in received if m["type"] in ("event", "skip")] == ["skip"]
    assert trip.reference not in json.dumps(received)
    assert olga.evaluate("document.body.dataset.liveRefreshed || '0'") == refreshed
    expect(olga.get_by_test_id("live-notice")).to_be_hidden()
    assert [m for m in sent if m.get("type") == "sync"] == []

    # when an equipment request reaches the reviewers next
    desk = _elsewhere(lambda: make_request(requester=people["rita"], request_type=equipment, title="Desk"))
    # then her page tells her of it
    expect(olga.get_by_test_id("live-notice")).to_have_text(f"Rita Requester submitted {desk.reference}")

    # and when Alex takes it, it appears in her inbox live (she stands in for what he
    # holds), the travel one never does, and still nothing re-synced
    def alex_claims() -> bool:
        handoff = Handoff.objects.for_instance(desk).open().get()
        handoff_claim(handoff_id=handoff.pk, actor=people["alex"])
        return True

    _elsewhere(alex_claims)
    expect(_row(olga, desk)).to_contain_text("Desk")
    expect(_row(olga, trip)).to_have_count(0)
    assert [m for m in sent if m.get("type") == "sync"] == []
    assert olga.evaluate("window.__sameDocument") is True
