"""The team view's whole page (session, navigation, the selector, the template) costs the
same statements whatever the amount of work its team holds; bench/inbox measures it at a
million requests, this pins it at two small sizes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.approvals.policy_world import PolicyWorld, load_demo_world
from workflows.models import Handoff
from workflows.services import handoff_claim

pytestmark = pytest.mark.django_db

# session, user, the manager's roles, the type filter's choices; the members, groups, the
# counts per member and per group (one statement), the page of items with their requests;
# the navigation: the manager's delegations, inbox counts, unread notifications
TEAM_PAGE_STATEMENTS = 11


def _page_statements(client: Client) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/team/")
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def _team_with_work(count: int) -> tuple[PolicyWorld, Client]:
    """Maria's team (Operations and her reports) holding `count` posts: half claimed by
    Eddie, half in the editors' queue and overdue."""
    world = load_demo_world()
    for i in range(count):
        post = world.submit("content", title=f"Post {i}")
        handoff = Handoff.objects.for_instance(post).open().get()
        if i % 2:
            handoff_claim(handoff_id=handoff.pk, actor=world["eddie"])
        else:
            Handoff.objects.filter(pk=handoff.pk).update(due_at=timezone.now() - timedelta(hours=1))
    client = Client()
    client.force_login(world["maria"])
    return world, client


@pytest.mark.parametrize("count", [3, 30])
def test_the_team_page_costs_the_same_statements_whatever_its_teams_work(count: int) -> None:
    # given a manager whose team holds `count` items (a first page warms the content types)
    _, client = _team_with_work(count)
    _page_statements(client)
    # when the team view is read
    statements = _page_statements(client)
    # then it took the same statements whatever the count
    assert len(statements) == TEAM_PAGE_STATEMENTS, "\n".join(s[:160] for s in statements)
