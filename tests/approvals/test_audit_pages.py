"""The auditors' pages: who may open each, that auditors change nothing, every filter of the
log, its keyset paging and constant queries, and how entries and evidence are shown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from approvals.audit.filters import AuditFilter
from approvals.audit.selectors import audit_page
from approvals.models import ApprovalRequest, AuditExport, RequestType
from tests.approvals.audit_world import REQUEST_ENTRIES, AuditWorld, audit_world_build
from tests.approvals.conftest import ROLES, World
from tests.approvals.test_pages import ENDPOINTS as REQUEST_ENDPOINTS
from tests.workflows.support import audit_column_set, chain_rewrite
from workflows.checkpoints import checkpoint_create
from workflows.models import AuditCheckpoint, AuditEntry, Handoff, OutboxEvent


@pytest.fixture
def audit_world(world: World) -> AuditWorld:
    return audit_world_build(world)


def _url(name: str, *args: Any, **query: str) -> str:
    url = reverse(name, args=args)
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# --- who may open what ------------------------------------------------------------------------

AUDIT_ENDPOINTS: dict[str, Callable[[World], str]] = {
    "log": lambda w: _url("audit:log"),
    "log filtered": lambda w: _url("audit:log", ref=w.in_review.reference),
    "raw entry": lambda w: _url(
        "audit:entry", AuditEntry.objects.for_instance(w.in_review).values_list("pk", flat=True)[0]
    ),
    "export csv": lambda w: _url("audit:export_csv"),
    "export jsonl": lambda w: _url("audit:export_jsonl", action="decisions"),
    "bundle of a range": lambda w: _url("audit:bundle", ref=w.in_review.reference),
    "evidence page": lambda w: _url("audit:evidence", w.in_review.pk),
    "evidence bundle": lambda w: _url("audit:evidence_bundle", w.in_review.pk),
    "separation of duties": lambda w: _url("audit:sod"),
    "checkpoints": lambda w: _url("audit:checkpoints"),
    "checkpoint file": lambda w: _url("audit:checkpoint", AuditCheckpoint.objects.get().pk),
    "public key": lambda w: _url("audit:public_key"),
    "exports": lambda w: _url("audit:exports"),
}
A = (302, 403, 403, 403, 403, 200, 200, 403)  # auditors and superusers only
# fmt: off
#                          anonymous requester approver other_appr manager auditor admin outsider
AUDIT_MATRIX: dict[str, tuple[int, ...]] = {
    "log": A, "log filtered": A, "raw entry": A, "export csv": A, "export jsonl": A,
    "bundle of a range": A, "separation of duties": A, "checkpoints": A, "checkpoint file": A,
    "public key": A, "exports": A,
    # whoever may see the request sees its evidence; the rest learn nothing of it (404)
    "evidence page":        (302, 200, 200, 404, 200, 200, 200, 404),
    # the bundle is an export: auditors only, and still a 404 to who may not see the request
    "evidence bundle":      (302, 403, 403, 404, 403, 200, 200, 404),
}
# fmt: on


def _matrix_cases() -> list[Any]:
    assert set(AUDIT_MATRIX) == set(AUDIT_ENDPOINTS)
    return [
        pytest.param(endpoint, role, status, id=f"{endpoint}-{role}")
        for endpoint, statuses in AUDIT_MATRIX.items()
        for role, status in zip(ROLES, statuses, strict=True)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "role", "expected"), _matrix_cases())
def test_each_audit_page_answers_each_role(world: World, endpoint: str, role: str, expected: int) -> None:
    # given a request in review and a signed checkpoint
    world.in_review  # noqa: B018  (made now)
    checkpoint_create()
    url = AUDIT_ENDPOINTS[endpoint](world)
    # when the role opens the page (reading a streamed answer to its end)
    response = world.client(role).get(url)
    if response.streaming:
        b"".join(cast(Any, response).streaming_content)
    # then it answers as the table says
    assert response.status_code == expected, (endpoint, role)
    if role == "anonymous":
        assert response.headers["Location"].startswith(reverse("login"))
    if expected == 200:
        # and under a strict Content-Security-Policy
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES[1:])
def test_the_audit_log_is_in_the_nav_of_auditors_and_superusers_only(world: World, role: str) -> None:
    html = world.client(role).get(reverse("approvals:home")).content.decode()
    assert ('data-testid="nav-audit"' in html) is (role in {"auditor", "admin"})


# --- auditors change nothing ----------------------------------------------------------------------


def _everything() -> tuple[Any, ...]:
    return (
        AuditEntry.objects.count(),
        OutboxEvent.objects.count(),
        list(ApprovalRequest.objects.order_by("pk").values_list("pk", "state", "version", "title")),
        list(Handoff.objects.order_by("pk").values_list("pk", "assignee_id", "closed_at")),
        RequestType.objects.count(),
        User.objects.count(),
        Group.objects.count(),
        AuditCheckpoint.objects.count(),
        AuditExport.objects.count(),
    )


@pytest.mark.django_db
def test_every_write_an_auditor_tries_is_refused_and_changes_nothing(world: World) -> None:
    # given requests in every state an action needs, a claimed handoff and a checkpoint
    calls = [
        build(world)
        for name, build in REQUEST_ENDPOINTS.items()
        if "POST" in name or build(world).method == "post"
    ]
    checkpoint_create()
    req, entry = world.in_review, AuditEntry.objects.first()
    assert entry is not None
    admin_posts = [
        reverse("admin:approvals_approvalrequest_change", args=[req.pk]),
        reverse("admin:approvals_requesttype_add"),
        reverse("admin:accounts_user_add"),
        reverse("admin:workflows_auditentry_delete", args=[entry.pk]),
        reverse("admin:workflows_auditentry_change", args=[entry.pk]),
    ]
    audit_posts = [
        _url("audit:log"),
        _url("audit:export_csv"),
        _url("audit:evidence", req.pk),
        _url("audit:checkpoints"),
    ]
    auditor = world.client("auditor")
    before = _everything()

    # when the auditor posts to every request action, claim, release, new request and logout-free endpoint
    answers = {}
    for call in calls:
        if call.url == reverse("logout"):
            continue
        answers[call.url + str(call.data.get("action", ""))] = auditor.post(call.url, call.data).status_code
    # and to the admin, and to the audit pages
    for url in admin_posts:
        answers[url] = auditor.post(url, {"title": "x", "username": "mallory", "post": "yes"}).status_code
    for url in audit_posts:
        answers[url] = auditor.post(url, {}).status_code

    # then each is refused: 403 from the lifecycle, 405 from the read-only pages, the admin
    # sends a non-staff person to its login; none is a success
    assert all(
        status in {403, 404, 405} for url, status in answers.items() if not url.startswith("/admin/")
    ), answers
    assert all(status == 302 for url, status in answers.items() if url.startswith("/admin/")), answers
    assert {status for url, status in answers.items() if url.startswith("/audit/")} == {405}
    # and nothing at all changed
    assert _everything() == before


# --- the log: filters ------------------------------------------------------------------------------


def _refs_actions(world: World, **query: str) -> list[tuple[str, str]]:
    response = world.client("auditor").get(_url("audit:log", **query))
    assert response.status_code == 200, response.content.decode()[:2000]
    return [(row.reference, row.entry.action) for row in response.context["page"].rows]


@pytest.mark.django_db
def test_the_unfiltered_log_shows_every_entry_newest_first_with_its_count(audit_world: AuditWorld) -> None:
    world = audit_world.world
    response = world.client("auditor").get(_url("audit:log"))
    page = response.context["page"]
    # then every entry is there, newest first, and the count says how many
    assert page.count == REQUEST_ENTRIES == len(page.rows)
    moments = [(r.entry.created_at, r.entry.pk) for r in page.rows]
    assert moments == sorted(moments, reverse=True)
    assert f"{REQUEST_ENTRIES} entries match" in response.content.decode()


@pytest.mark.django_db
def test_filter_by_actor_and_by_on_behalf_of(audit_world: AuditWorld) -> None:
    world, b, d = audit_world.world, audit_world.req("b"), audit_world.req("d")
    # by actor: maria cancelled c and reassigned d
    assert sorted(_refs_actions(world, actor="maria")) == sorted(
        [(audit_world.req("c").reference, "cancel"), (d.reference, "reassign")]
    )
    # on behalf of alex: bea's approval of b
    assert _refs_actions(world, on_behalf_of="alex") == [(b.reference, "approve")]
    # both at once
    assert _refs_actions(world, actor="bea", on_behalf_of="alex") == [(b.reference, "approve")]
    # an unknown name is the caller's mistake: 400, naming it
    response = world.client("auditor").get(_url("audit:log", actor="nobody"))
    assert response.status_code == 400
    assert "Nobody is called &#x27;nobody&#x27;." in response.content.decode()


@pytest.mark.django_db
def test_filter_by_date_range(audit_world: AuditWorld) -> None:
    world = audit_world.world
    today = timezone.localdate()
    # given one entry moved to last week behind the ORM's back
    old = AuditEntry.objects.order_by("id").first()
    assert old is not None
    audit_column_set(old.pk, "created_at", timezone.now() - timedelta(days=7))
    week_ago = (today - timedelta(days=7)).isoformat()
    # then a range of last week finds it alone, today all the others, both days all
    assert [r for r, _ in _refs_actions(world, since=week_ago, until=week_ago)] == [f"REQ-{old.object_id}"]
    assert len(_refs_actions(world, since=today.isoformat())) == REQUEST_ENTRIES - 1
    assert len(_refs_actions(world, since=week_ago, until=today.isoformat())) == REQUEST_ENTRIES
    # and a range that ends before it starts is refused
    assert (
        world.client("auditor").get(_url("audit:log", since=today.isoformat(), until=week_ago)).status_code
        == 400
    )


@pytest.mark.django_db
def test_filter_by_request_type_and_by_reference(audit_world: AuditWorld) -> None:
    world, f, b = audit_world.world, audit_world.req("f"), audit_world.req("b")
    assert _refs_actions(world, type="finance") == [(f.reference, "submit"), (f.reference, "create")]
    assert len(_refs_actions(world, type="general")) == REQUEST_ENTRIES - 2
    # a reference as people write it: REQ-8, req 8, or just 8
    expected = [(b.reference, a) for a in ("approve", "resubmit", "request_changes", "submit", "create")]
    assert _refs_actions(world, ref=b.reference) == expected
    assert _refs_actions(world, ref=f"req{b.pk}") == expected
    assert _refs_actions(world, ref=str(b.pk)) == expected
    assert world.client("auditor").get(_url("audit:log", ref="invoice")).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("decisions", {("a", "approve"), ("b", "request_changes"), ("b", "approve")}),
        ("claims", {("d", "claim")}),
        ("reassignments", {("d", "reassign")}),
        ("policy_moves", {("d", "move_policy"), ("e", "move_policy")}),
        ("system", {("d", "move_policy"), ("e", "move_policy")}),
        ("cancel", {("c", "cancel")}),
        ("resubmit", {("b", "resubmit")}),
    ],
)
def test_filter_by_kind_of_action(
    audit_world: AuditWorld, action: str, expected: set[tuple[str, str]]
) -> None:
    refs = {audit_world.req(k).reference: k for k in audit_world.requests}
    found = {(refs[ref], act) for ref, act in _refs_actions(audit_world.world, action=action)}
    assert found == expected


@pytest.mark.django_db
def test_state_changes_are_every_transition(audit_world: AuditWorld) -> None:
    found = _refs_actions(audit_world.world, action="transitions")
    assert {a for _, a in found} == {
        "submit",
        "approve",
        "request_changes",
        "resubmit",
        "cancel",
        "move_policy",
    }
    assert len(found) == REQUEST_ENTRIES - 6 - 2  # all but 6 creations, a claim and a reassignment


@pytest.mark.django_db
def test_filter_by_text_in_comments_ignores_case(audit_world: AuditWorld) -> None:
    world = audit_world.world
    assert _refs_actions(world, text="QUOTE") == [(audit_world.req("b").reference, "request_changes")]
    assert _refs_actions(world, text="budget", action="cancel") == [
        (audit_world.req("c").reference, "cancel")
    ]
    assert _refs_actions(world, text="budget", action="approve") == []


@pytest.mark.django_db
def test_three_filters_together_and_the_count_they_show(audit_world: AuditWorld) -> None:
    # given the log filtered by type, kind of action and date
    world = audit_world.world
    response = world.client("auditor").get(
        _url("audit:log", type="general", action="decisions", since=timezone.localdate().isoformat())
    )
    # then it shows the three decisions of that type, and says so
    assert response.context["page"].count == 3
    assert "3 entries match this filter" in response.content.decode()


# --- the log: paging and cost ---------------------------------------------------------------------


@pytest.mark.django_db
def test_keyset_pages_follow_each_other_without_gaps_or_repeats(audit_world: AuditWorld) -> None:
    # given pages of 4 entries
    everything = audit_page(audit_filter=AuditFilter(), limit=100).rows
    seen, cursor = [], ""
    while True:
        page = audit_page(audit_filter=AuditFilter(), before=cursor, limit=4)
        seen += [row.entry.pk for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # then walking them gives every entry once, in order
    assert seen == [row.entry.pk for row in everything]
    # and the page's "older" link carries the filter and the position
    html = audit_world.world.client("auditor").get(_url("audit:log", action="transitions")).content.decode()
    assert "Older entries" not in html  # 13 fit on one page of 50


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{}, {"type": "general", "action": "decisions", "actor": "alex"}])
def test_a_log_page_costs_the_same_queries_whatever_its_size(
    audit_world: AuditWorld, query: dict[str, str]
) -> None:
    audit_filter = AuditFilter(
        actor=User.objects.get(username="alex") if "actor" in query else None,
        request_type=RequestType.objects.get(slug="general") if "type" in query else None,
        action=query.get("action", ""),
    )
    counts = []
    for size in (2, 20):
        audit_page(audit_filter=audit_filter, limit=size)  # warm the content type cache
        with CaptureQueriesContext(connection) as captured:
            rows = audit_page(audit_filter=audit_filter, limit=size).rows
        counts.append(len(captured.captured_queries))
        assert len(rows) == min(size, len(audit_page(audit_filter=audit_filter, limit=100).rows))
    assert counts[0] == counts[1], counts
    assert counts[0] == 3  # entries (with their requests), the count, the names they mention


@pytest.mark.django_db
def test_the_log_page_costs_the_same_statements_at_two_sizes(audit_world: AuditWorld, monkeypatch) -> None:
    from approvals.audit import views  # noqa: PLC0415

    client = audit_world.world.client("auditor")
    counts = []
    for size in (2, 15):
        monkeypatch.setattr(views, "PAGE_SIZE", size)
        client.get(_url("audit:log", actor="alex"))
        with CaptureQueriesContext(connection) as captured:
            response = client.get(_url("audit:log", actor="alex", type="general"))
        assert len(response.context["page"].rows) == min(size, 3)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts


# --- how entries are shown ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_entry_says_who_did_what_for_whom_from_where_to_where_and_why(audit_world: AuditWorld) -> None:
    world, b, d = audit_world.world, audit_world.req("b"), audit_world.req("d")
    rows = {(r.reference, r.entry.action): r for r in audit_page(audit_filter=AuditFilter(), limit=100).rows}
    # a delegated approval: both people, the move, the comment, the handoff closed
    approval = rows[(b.reference, "approve")]
    assert approval.entry.actor is not None
    assert approval.entry.on_behalf_of is not None
    assert (approval.entry.actor.username, approval.entry.on_behalf_of.username) == ("bea", "alex")
    assert approval.verb == "approved"
    assert (approval.item.source_label, approval.item.target_label) == ("In review", "Approved")
    assert approval.entry.comment == "For Alex"
    assert any(line.startswith("closed: group reviewers") for line in approval.handoffs)
    assert ("stage index", "0", "—") in {(c.field, c.before, c.after) for c in approval.changes}
    # a resubmission: what changed, field by field
    resubmit = rows[(b.reference, "resubmit")]
    assert ("title", "Laptop", "Laptop with quote") in {
        (c.field, c.before, c.after) for c in resubmit.changes
    }
    assert "revision 2 (1 change)" in resubmit.notes
    # a reassignment: from whom to whom, and why
    reassign = rows[(d.reference, "reassign")]
    assert reassign.handoffs == ("from Alex from group reviewers to Bea",)
    assert reassign.entry.comment == "Alex is away"
    # a system action: nobody acted
    move = rows[(d.reference, "move_policy")]
    assert move.is_system
    assert move.verb == "moved to another policy version"
    # and the page shows them so, with the raw record one click away
    html = world.client("auditor").get(_url("audit:log", ref=b.reference)).content.decode()
    assert 'on behalf of <strong class="principal">Alex</strong>' in html
    raw = world.client("auditor").get(_url("audit:entry", approval.entry.pk))
    assert approval.entry.hash in raw.content.decode()
    assert f"&quot;on_behalf_of&quot;: {approval.entry.on_behalf_of_id}," in raw.content.decode()


# --- the evidence page ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_evidence_page_holds_a_requests_whole_story_and_verifies_its_chain(
    audit_world: AuditWorld,
) -> None:
    world, b = audit_world.world, audit_world.req("b")
    checkpoint_create()
    response = world.client("auditor").get(_url("audit:evidence", b.pk))
    page, html = response.context["page"], response.content.decode()
    # then every entry is there in order, with decisions, revisions with their diff, and the policy
    assert [row.entry.action for row in page.history] == [
        "create",
        "submit",
        "request_changes",
        "resubmit",
        "approve",
    ]
    assert [d.outcome for d in page.decisions] == ["request_changes", "approve"]
    assert [(c.label, c.before, c.after) for c in page.revisions[1].changes] == [
        ("Title", "Laptop", "Laptop with quote")
    ]
    assert [v.pk for v in page.versions] == [b.policy_version_id]
    # and its chain verifies, against the checkpoint too
    assert page.check.ok
    assert page.check.signed_seq == 5
    assert page.check.signature_ok
    assert "Intact: 5 entries" in html
    assert 'data-testid="evidence-bundle"' in html


@pytest.mark.django_db
def test_the_evidence_page_names_a_rewritten_chain(audit_world: AuditWorld) -> None:
    # given a checkpoint, then a chain rewritten consistently behind Baton's back
    world, a = audit_world.world, audit_world.req("a")
    checkpoint_create()
    chain_rewrite(a, seq=3, comment="Approved blind")
    # then its evidence page says what differs
    response = world.client("auditor").get(_url("audit:evidence", a.pk))
    assert response.context["page"].check.problems == [
        f"entry #3 differs from what checkpoint {AuditCheckpoint.objects.get().pk} signed (chain rewritten)"
    ]
    assert "Broken:" in response.content.decode()


@pytest.mark.django_db
def test_the_evidence_page_of_a_requester_shows_no_bundle_link(audit_world: AuditWorld) -> None:
    html = (
        audit_world.world.client("requester")
        .get(_url("audit:evidence", audit_world.req("a").pk))
        .content.decode()
    )
    assert "Intact: 3 entries" in html
    assert 'data-testid="evidence-bundle"' not in html


@pytest.mark.django_db
def test_reading_pages_never_make_a_signing_key(world: World, settings, tmp_path) -> None:
    # given the embedded mode before its first checkpoint: no key file yet
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "audit-signing-key.pem")
    settings.AUDIT_SIGNING_KEY_GENERATE = True
    auditor = world.client("auditor")
    # when an auditor reads the evidence page, the checkpoints page and asks for the key
    assert auditor.get(_url("audit:evidence", world.in_review.pk)).status_code == 200
    assert "No signing key yet" in auditor.get(_url("audit:checkpoints")).content.decode()
    assert auditor.get(_url("audit:public_key")).status_code == 404
    # then no key was written: only signing a checkpoint makes one
    assert not (tmp_path / "audit-signing-key.pem").exists()
