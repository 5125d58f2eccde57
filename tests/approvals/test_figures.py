"""The managers' figures: SLA breach rate, lead time, time in each stage, per type and team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Team, TeamMembership
from approvals.charts import bar_chart
from approvals.models import ApprovalRequest
from approvals.selectors.figures import NO_TEAM, manager_figures
from approvals.services import request_act
from tests.approvals.conftest import World
from tests.factories import RequestTypeFactory, make_request
from workflows.models import Handoff

pytestmark = pytest.mark.django_db

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def _set(req: ApprovalRequest, *, opened: datetime, due: datetime, closed: datetime | None) -> None:
    Handoff.objects.for_instance(req).update(opened_at=opened, due_at=due, closed_at=closed)


def _decided(world: World, *, title: str, hours: float, late: bool) -> ApprovalRequest:
    req = world.new_request(title=title)
    request_act(request_id=req.pk, action="approve", actor=world.user("approver"))
    closed = T0 + timedelta(hours=hours)
    _set(req, opened=T0, due=T0 + timedelta(hours=4), closed=closed)
    ApprovalRequest.objects.filter(pk=req.pk).update(submitted_at=T0, decided_at=closed)
    assert late == (closed > T0 + timedelta(hours=4))
    return req


def test_breach_rate_lead_time_and_stage_time_per_type_and_team(world: World) -> None:
    # given three requests of 'General' in March: decided after 2h (on time) and 6h (late),
    # and one still waiting, 4h overdue at the moment of looking
    _decided(world, title="a", hours=2, late=False)
    _decided(world, title="b", hours=6, late=True)
    waiting = world.new_request(title="c")
    _set(waiting, opened=T0, due=T0 + timedelta(hours=4), closed=None)
    now = T0 + timedelta(hours=8)
    # when the figures of March are read
    found = manager_figures(
        start=datetime(2027, 3, 1, tzinfo=UTC), end=datetime(2027, 4, 1, tzinfo=UTC), now=now
    )
    (general,) = found.by_type
    # then two of three handoffs with an SLA broke it, the median lead time is 4h, and
    # the review stage took 4h on average (of the two that ended)
    assert (general.name, general.handoffs, general.with_sla, general.breached) == ("General", 3, 3, 2)
    assert general.breach_rate == pytest.approx(2 / 3)
    assert general.median_lead_hours == pytest.approx(4.0)
    assert general.stage_means() == [("review", pytest.approx(4.0))]
    # and per team: the handoffs held by nobody yet (offered to a group) are '(no team)',
    # the requester's lead times too (rita is in no team)
    assert [g.name for g in found.by_team] == [NO_TEAM]


def test_a_team_holding_work_gets_its_own_figures(world: World) -> None:
    req = world.new_request(title="claimed")
    handoff = Handoff.objects.for_instance(req).open().get()
    Handoff.objects.filter(pk=handoff.pk).update(assignee=world.user("approver"))
    _set(req, opened=T0, due=T0 + timedelta(hours=1), closed=None)
    found = manager_figures(start=T0, end=T0 + timedelta(days=1), now=T0 + timedelta(hours=2))
    operations = next(g for g in found.by_team if g.name == "Operations")
    assert (operations.handoffs, operations.breached) == (1, 1)


def test_work_outside_the_period_does_not_count(world: World) -> None:
    req = world.new_request()
    _set(req, opened=T0 - timedelta(days=40), due=T0 - timedelta(days=39), closed=None)
    found = manager_figures(start=T0, end=T0 + timedelta(days=30), now=T0)
    assert found.empty


def test_the_page_draws_the_charts_for_managers_only(world: World) -> None:
    _decided(world, title="a", hours=6, late=True)
    response = world.client("manager").get("/team/figures/", {"start": "2027-03-01", "end": "2027-03-31"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<svg") == 5
    assert "<title>SLA breach rate per type</title>" in html
    assert "General: 100%" in html
    assert world.client("approver").get("/team/figures/").status_code == 403


def test_a_bad_period_is_named(world: World) -> None:
    client = world.client("manager")
    reversed_period = client.get("/team/figures/", {"start": "2027-03-10", "end": "2027-03-01"})
    assert reversed_period.status_code == 400
    assert "The period must end on or after its start." in reversed_period.content.decode()
    assert client.get("/team/figures/", {"start": "soon"}).status_code == 400


def test_chart_labels_are_escaped() -> None:
    svg = str(bar_chart(title="t", rows=[("<script>alert(1)</script>", 3.0)], unit="h"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_a_type_named_like_markup_is_shown_as_text(world: World) -> None:
    kind = RequestTypeFactory.create(slug="odd", name="<b>Odd</b>")
    req = make_request(requester=world.user("requester"), request_type=kind)
    Handoff.objects.for_instance(req).update(opened_at=T0, due_at=T0)
    html = (
        world.client("manager")
        .get("/team/figures/", {"start": "2027-03-01", "end": "2027-03-02"})
        .content.decode()
    )
    assert "<b>Odd</b>" not in html
    assert "&lt;b&gt;Odd&lt;/b&gt;" in html


def test_team_membership_is_read_for_holders_only(world: World) -> None:
    # a person in two teams counts in the first by name
    second = Team.objects.create(name="Accounts", slug="accounts")
    TeamMembership.objects.create(team=second, user=world.user("approver"))
    req = world.new_request()
    handoff = Handoff.objects.for_instance(req).open().get()
    Handoff.objects.filter(pk=handoff.pk).update(assignee=world.user("approver"), opened_at=T0, due_at=None)
    found = manager_figures(start=T0, end=T0 + timedelta(days=1), now=T0)
    assert [g.name for g in found.by_team] == ["Accounts"]
    assert found.by_team[0].breach_rate is None  # no SLA: no rate
