"""Delegations (out of office) through their services: who may set one up and for whom,
what is refused (naming the field), revoking (at once), and what a delegation lets its
delegate see and do: only its types, never chained, never the delegator's own requests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Delegation, Team, TeamMembership, User
from approvals import policies
from approvals.delegations import REASON_MAX, delegation_create, delegation_revoke
from approvals.demo import demo_load
from approvals.models import ApprovalRequest, RequestType
from approvals.selectors.delegations import delegation_lists, request_delegations
from approvals.services import request_act
from tests.factories import RequestTypeFactory, UserFactory, make_request
from workflows import errors
from workflows.models import AuditEntry, Handoff

pytestmark = pytest.mark.django_db


def _week() -> tuple[datetime, datetime]:
    now = timezone.now()
    return now - timedelta(minutes=5), now + timedelta(days=7)


def _create(actor: User, delegator: User, delegate: User, **changes: Any) -> Delegation:
    starts_at, ends_at = _week()
    values: dict[str, Any] = {"starts_at": starts_at, "ends_at": ends_at, "scope": [], "reason": "Holiday"}
    values.update(changes)
    return delegation_create(actor=actor, delegator=delegator, delegate=delegate, **values)


@pytest.fixture
def deputy() -> User:
    return UserFactory.create(username="dan", first_name="Dan", last_name="Deputy")


@pytest.fixture
def submitted(requester: User, request_type: RequestType) -> ApprovalRequest:
    """A request in review, offered to the reviewers group (Alex's)."""
    return make_request(requester=requester, request_type=request_type)


@pytest.fixture
def ops_team(manager: User, approver: User) -> Team:
    """Maria manages the operations team, of which Alex (a reviewer) is a member."""
    team = Team.objects.create(name="Operations", slug="operations")
    TeamMembership.objects.create(team=team, user=manager, is_manager=True)
    TeamMembership.objects.create(team=team, user=approver)
    return team


# --- setting one up ----------------------------------------------------------------------


def test_a_person_sets_up_their_own_out_of_office(approver: User, deputy: User) -> None:
    # given a reviewer going on holiday
    # when they delegate their work to a colleague for a week
    delegation = _create(approver, approver, deputy, reason="  Holiday  ")
    # then it is active now, reaches every type, and says who set it up
    delegation.refresh_from_db()
    assert delegation.is_active()
    assert (delegation.delegator, delegation.delegate, delegation.scope) == (approver, deputy, [])
    assert (delegation.created_by, delegation.reason, delegation.revoked_at) == (approver, "Holiday", None)
    assert delegation.created_at is not None


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("to self", "delegate", "Choose someone else"),
        ("inactive delegate", "delegate", "is not an active user"),
        ("inactive delegator", "delegator", "is not an active user"),
        ("end before start", "ends_at", "The end must come after the start."),
        ("end in the past", "ends_at", "The end is in the past"),
        ("unknown type", "scope", "Unknown request type: travel."),
        ("retired type", "scope", "Unknown request type: retired."),
        ("reason too long", "reason", f"At most {REASON_MAX} characters"),
    ],
)
def test_a_bad_delegation_is_refused_naming_the_field(
    approver: User, deputy: User, request_type: RequestType, case: str, field: str, message: str
) -> None:
    # given a reviewer setting up a delegation with one thing wrong
    now = timezone.now()
    RequestTypeFactory.create(slug="retired", name="Retired", is_active=False)
    delegator, delegate = approver, deputy
    changes: dict[str, Any] = {}
    if case == "to self":
        delegate = approver
    elif case == "inactive delegate":
        User.objects.filter(pk=deputy.pk).update(is_active=False)
        delegate.refresh_from_db()
    elif case == "inactive delegator":
        User.objects.filter(pk=approver.pk).update(is_active=False)
        delegator.refresh_from_db()
    elif case == "end before start":
        changes = {"starts_at": now + timedelta(days=3), "ends_at": now + timedelta(days=2)}
    elif case == "end in the past":
        changes = {"starts_at": now - timedelta(days=3), "ends_at": now - timedelta(days=1)}
    elif case == "unknown type":
        changes = {"scope": ["general", "travel"]}
    elif case == "retired type":
        changes = {"scope": ["retired"]}
    elif case == "reason too long":
        changes = {"reason": "x" * (REASON_MAX + 1)}
    # when they submit it  /  then it is refused, the error names the field, nothing is made
    with pytest.raises(errors.InvalidInput) as caught:
        _create(approver, delegator, delegate, **changes)
    assert list(caught.value.field_errors) == [field]
    assert message in caught.value.field_errors[field][0]
    assert not Delegation.objects.exists()


def test_the_scope_is_kept_sorted_without_repeats(approver: User, deputy: User) -> None:
    RequestTypeFactory.create(slug="travel", name="Travel")
    RequestTypeFactory.create(slug="expense", name="Expense")
    delegation = _create(approver, approver, deputy, scope=["travel", "expense", "travel", " "])
    assert delegation.scope == ["expense", "travel"]


def test_a_manager_sets_one_up_for_a_team_member_and_a_direct_report(
    ops_team: Team, manager: User, approver: User, requester: User, deputy: User
) -> None:
    # given Alex in Maria's team, and Rita reporting to Maria directly
    requester.manager = manager
    requester.save(update_fields=["manager"])
    # when Maria sets up an out-of-office for each
    for_alex = _create(manager, approver, deputy)
    for_rita = _create(manager, requester, deputy)
    # then both exist, recorded as set up by Maria
    assert (for_alex.delegator, for_alex.created_by) == (approver, manager)
    assert (for_rita.delegator, for_rita.created_by) == (requester, manager)


@pytest.mark.parametrize(
    ("actor_name", "delegator_name"),
    [
        ("manager", "outsider"),  # not in her team, not her report
        ("approver", "manager"),  # a member does not set up their manager's
        ("approver", "second_approver"),  # nor a teammate's
        ("auditor", "approver"),  # seeing everything is not managing
    ],
)
def test_nobody_sets_one_up_for_someone_they_do_not_manage(
    ops_team: Team, request: pytest.FixtureRequest, deputy: User, actor_name: str, delegator_name: str
) -> None:
    # given Bea is Alex's teammate (a member, not a manager)
    second = request.getfixturevalue("second_approver")
    TeamMembership.objects.create(team=ops_team, user=second)
    actor, delegator = request.getfixturevalue(actor_name), request.getfixturevalue(delegator_name)
    # when the actor sets one up for the delegator  /  then Forbidden, on the delegator field
    with pytest.raises(errors.Forbidden) as caught:
        _create(actor, delegator, deputy)
    assert list(caught.value.field_errors) == ["delegator"]
    assert not Delegation.objects.exists()


def test_a_superuser_sets_one_up_for_anyone(outsider: User, deputy: User) -> None:
    admin = UserFactory.create(username="ada", is_superuser=True, is_staff=True)
    assert _create(admin, outsider, deputy).created_by == admin


# --- revoking ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["delegator", "creator", "manager", "superuser"])
def test_who_may_revoke_a_delegation(
    ops_team: Team, manager: User, approver: User, deputy: User, second_approver: User, who: str
) -> None:
    # given a delegation of Alex's work, set up by Bea (an administrator made her do it)
    admin = UserFactory.create(username="ada", is_superuser=True, is_staff=True)
    delegation = _create(admin, approver, deputy)
    Delegation.objects.filter(pk=delegation.pk).update(created_by=second_approver)
    actor = {"delegator": approver, "creator": second_approver, "manager": manager, "superuser": admin}[who]
    # when they revoke it
    revoked = delegation_revoke(actor=actor, delegation_id=delegation.pk)
    # then it has ended, saying by whom and when
    revoked.refresh_from_db()
    assert revoked.revoked_by == actor
    assert revoked.revoked_at is not None
    assert not revoked.is_active()
    assert not Delegation.objects.active().exists()


@pytest.mark.parametrize("who", ["delegate", "outsider", "auditor"])
def test_others_may_not_revoke_it(
    approver: User, deputy: User, outsider: User, auditor: User, who: str
) -> None:
    delegation = _create(approver, approver, deputy)
    actor = {"delegate": deputy, "outsider": outsider, "auditor": auditor}[who]
    with pytest.raises(errors.Forbidden):
        delegation_revoke(actor=actor, delegation_id=delegation.pk)
    delegation.refresh_from_db()
    assert delegation.revoked_at is None


def test_revoking_an_ended_delegation_is_a_conflict(approver: User, deputy: User) -> None:
    # given a delegation revoked once
    delegation = _create(approver, approver, deputy)
    delegation_revoke(actor=approver, delegation_id=delegation.pk)
    first = Delegation.objects.get(pk=delegation.pk).revoked_at
    # when revoked again  /  then it is a conflict, and the first revocation stands
    with pytest.raises(errors.TransitionNotAllowed, match="already ended"):
        delegation_revoke(actor=approver, delegation_id=delegation.pk)
    assert Delegation.objects.get(pk=delegation.pk).revoked_at == first
    # and an unknown one is not found
    with pytest.raises(errors.NotFound):
        delegation_revoke(actor=approver, delegation_id=999999)


def test_revoking_takes_effect_at_once(submitted: ApprovalRequest, approver: User, deputy: User) -> None:
    # given Dan stands in for Alex, and has Alex's review open on his screen
    delegation = _create(approver, approver, deputy)
    assert policies.may_view(submitted, deputy)
    open_handoffs = list(Handoff.objects.for_instance(submitted).open())
    page = request_delegations(request=submitted, user=deputy, open_handoffs=open_handoffs)
    assert [a.delegator for a in page.acting] == [approver]
    assert [o.action.value for o in page.acting[0].actions] == ["approve", "reject", "request_changes"]
    # when Alex comes back early and revokes it
    delegation_revoke(actor=approver, delegation_id=delegation.pk)
    # then Dan's approval for Alex is refused, and he no longer sees the request
    with pytest.raises(errors.Forbidden, match="has not delegated"):
        request_act(request_id=submitted.pk, action="approve", actor=deputy, on_behalf_of=approver)
    assert not policies.may_view(submitted, deputy)
    # and were he still to see it, the page would say the delegation ended
    page = request_delegations(request=submitted, user=deputy, open_handoffs=open_handoffs)
    assert page.acting == []
    assert [(g.delegator, g.ended_at is not None) for g in page.gone] == [(approver, True)]


# --- what a delegation lets its delegate do -----------------------------------------------


def test_a_delegate_sees_and_acts_on_what_waits_for_the_delegator(
    submitted: ApprovalRequest, approver: User, deputy: User
) -> None:
    # given Dan (no role) cannot see Alex's review
    assert not policies.may_view(submitted, deputy)
    # when Alex delegates to Dan
    _create(approver, approver, deputy)
    # then Dan may open it, and approves it for Alex; the record names both
    assert policies.may_view(submitted, deputy)
    result = request_act(
        request_id=submitted.pk, action="approve", actor=deputy, on_behalf_of=approver, comment="For Alex"
    )
    entry = AuditEntry.objects.get(pk=result.entry.pk)
    assert (result.target, entry.actor, entry.on_behalf_of) == ("approved", deputy, approver)
    # and having acted on it, he still sees it after the delegation is over
    Delegation.objects.update(revoked_at=timezone.now())
    assert policies.may_view(submitted, deputy)


def test_a_scoped_delegation_shows_and_allows_only_its_types(
    request_type: RequestType, requester: User, approver: User, deputy: User, approver_group: Any
) -> None:
    # given Alex reviews two types, and delegated only 'travel' to Dan
    travel = RequestTypeFactory.create(slug="travel", name="Travel", approver_group=approver_group)
    general_request = make_request(requester=requester, request_type=request_type)
    travel_request = make_request(requester=requester, request_type=travel, title="Train")
    _create(approver, approver, deputy, scope=["travel"])
    # then Dan sees and may act on the travel request only
    assert policies.may_view(travel_request, deputy)
    assert not policies.may_view(general_request, deputy)
    with pytest.raises(errors.Forbidden):
        request_act(request_id=general_request.pk, action="approve", actor=deputy, on_behalf_of=approver)
    result = request_act(request_id=travel_request.pk, action="approve", actor=deputy, on_behalf_of=approver)
    assert result.target == "approved"


def test_a_delegation_that_has_not_started_gives_nothing(
    submitted: ApprovalRequest, approver: User, deputy: User
) -> None:
    # given Alex's out-of-office starts tomorrow
    now = timezone.now()
    _create(approver, approver, deputy, starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=3))
    # then Dan can neither see nor act yet, and the page would say when it starts
    assert not policies.may_view(submitted, deputy)
    with pytest.raises(errors.Forbidden):
        request_act(request_id=submitted.pk, action="approve", actor=deputy, on_behalf_of=approver)
    open_handoffs = list(Handoff.objects.for_instance(submitted).open())
    page = request_delegations(request=submitted, user=deputy, open_handoffs=open_handoffs)
    assert page.acting == []
    assert page.gone[0].starts_at is not None


def test_an_expired_delegation_gives_nothing(
    submitted: ApprovalRequest, approver: User, deputy: User
) -> None:
    delegation = _create(approver, approver, deputy)
    Delegation.objects.filter(pk=delegation.pk).update(
        starts_at=timezone.now() - timedelta(days=9), ends_at=timezone.now() - timedelta(days=2)
    )
    assert not policies.may_view(submitted, deputy)
    with pytest.raises(errors.Forbidden):
        request_act(request_id=submitted.pk, action="approve", actor=deputy, on_behalf_of=approver)


def test_a_delegate_neither_sees_nor_acts_on_the_delegators_own_requests(
    submitted: ApprovalRequest, requester: User, approver: User, deputy: User
) -> None:
    # given Rita delegated her work to Dan, and Alex asked for changes to her request
    _create(requester, requester, deputy)
    request_act(request_id=submitted.pk, action="request_changes", actor=approver, comment="Add a quote")
    # then the request now waits for Rita, yet it is not Dan's to open or to act on for her
    assert Handoff.objects.for_instance(submitted).open().get().assignee == requester
    assert not policies.may_view(submitted, deputy)
    for action in ("resubmit", "withdraw"):
        with pytest.raises(errors.Forbidden, match="own item"):
            request_act(request_id=submitted.pk, action=action, actor=deputy, on_behalf_of=requester)
    open_handoffs = list(Handoff.objects.for_instance(submitted).open())
    assert not request_delegations(request=submitted, user=deputy, open_handoffs=open_handoffs)


def test_a_delegation_never_chains_for_viewing_either(
    submitted: ApprovalRequest, approver: User, deputy: User, outsider: User
) -> None:
    # given Alex delegated to Dan, and Dan to Olaf
    _create(approver, approver, deputy)
    _create(deputy, deputy, outsider)
    # then Olaf sees nothing of Alex's work, and cannot act for Alex
    assert not policies.may_view(submitted, outsider)
    with pytest.raises(errors.Forbidden):
        request_act(request_id=submitted.pk, action="approve", actor=outsider, on_behalf_of=approver)


# --- the delegations page's lists ---------------------------------------------------------


@pytest.mark.parametrize("count", [2, 20])
def test_the_lists_cost_the_same_queries_whatever_their_length(
    ops_team: Team, manager: User, approver: User, count: int
) -> None:
    # given Maria's team member Alex set up many delegations, half of them revoked since
    RequestTypeFactory.create(slug="travel", name="Travel")
    for i in range(count):
        delegate = UserFactory.create(username=f"deputy{i}")
        made = _create(approver, approver, delegate, scope=["travel"] if i % 3 else [])
        if i % 2:
            delegation_revoke(actor=approver, delegation_id=made.pk)
    maria = User.objects.get(pk=manager.pk)
    maria.has_perm("workflows.view_auditentry")  # roles are read once per request, by the page
    # when Maria's page lists them
    with CaptureQueriesContext(connection) as captured:
        lists = delegation_lists(user=maria)
    # then every one is there, each revocable by her (Alex is hers), in four statements:
    # whom she looks after, the open ones, the past page, the names of the types
    assert len(lists.open) + len(lists.past) == count
    assert all(row.revocable for row in lists.open)
    assert {row.scope_names for row in lists.open + lists.past} <= {(), ("Travel",)}
    assert len(captured.captured_queries) == 4, [q["sql"][:150] for q in captured.captured_queries]


def test_the_demo_has_one_open_out_of_office_made_once() -> None:
    # given the demo data, loaded twice
    demo_load()
    demo_load()
    # then Maria's expense claims are delegated to Alex once, open now, set up by her
    (delegation,) = Delegation.objects.all()
    assert (delegation.delegator.username, delegation.delegate.username) == ("maria", "alex")
    assert (delegation.scope, delegation.created_by) == (["expense"], delegation.delegator)
    assert delegation.is_active()
    # and Alex may open Rita's taxi claim that waits for Maria
    taxi = ApprovalRequest.objects.get(title="Taxi to the airport")
    assert policies.may_view(taxi, delegation.delegate)


def test_a_delegation_made_or_revoked_in_the_admin_says_by_whom(approver: User, deputy: User) -> None:
    # given an administrator in the Django admin
    admin = UserFactory.create(username="ada", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    now = timezone.localtime()
    later = now + timedelta(days=2)
    form = {
        "delegator": approver.pk,
        "delegate": deputy.pk,
        "starts_at_0": now.date().isoformat(),
        "starts_at_1": "00:00:00",
        "ends_at_0": later.date().isoformat(),
        "ends_at_1": "00:00:00",
        "reason": "Set up by IT",
        "scope": "[]",
    }
    # when they add a delegation there
    response = client.post("/admin/accounts/delegation/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    delegation = Delegation.objects.get()
    # then it records them as its creator
    assert delegation.created_by == admin
    # when they set its revocation time
    form |= {"revoked_at_0": now.date().isoformat(), "revoked_at_1": now.strftime("%H:%M:%S")}
    response = client.post(f"/admin/accounts/delegation/{delegation.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    # then it records them as its revoker
    delegation.refresh_from_db()
    assert (delegation.revoked_by, delegation.is_active()) == (admin, False)
