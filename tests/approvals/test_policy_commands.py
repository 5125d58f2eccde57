"""The policy management commands: policy_load, policy_check, policy_move, policy_simulate.

Each runs for real (call_command) against the database; the files are real YAML and JSON
written to a temporary directory.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from guardian.shortcuts import assign_perm

from accounts.models import User
from accounts.roles import REQUESTERS, roles_sync
from approvals.demo import POLICY_DIR, demo_load
from approvals.models import ApprovalRequest, PolicyVersion, RequestType
from approvals.publishing import policy_draft_create
from approvals.services import request_act
from tests.factories import GroupFactory, UserFactory, make_approver, make_request, make_requester
from workflows.models import AuditEntry, Handoff

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "required": ["amount"],
    "properties": {"amount": {"type": "number"}, "note": {"type": "string"}},
}


def expense_file(*, threshold: int = 1000, finance: str = "finance", schema: Any = SCHEMA) -> dict[str, Any]:
    """A two-stage expense policy as a team would keep it in git."""
    request_type: dict[str, Any] = {"slug": "expense", "name": "Expense claim"}
    if schema is not None:
        request_type["payload_schema"] = schema
    return {
        "request_type": request_type,
        "stages": [
            {"name": "review", "approvers": {"groups": ["reviewers"]}, "rule": "any"},
            {
                "name": "finance",
                "when": {"field": "amount", "op": "gt", "value": threshold},
                "approvers": {"groups": [finance]},
                "rule": "any",
            },
        ],
    }


def write(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(content), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def run(*args: Any, **options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def run_failing(*args: Any, **options: Any) -> tuple[str, str, str]:
    """(stdout, stderr, the CommandError's message) of a command that must fail."""
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue(), str(failure.value)


@pytest.fixture
def people() -> dict[str, User]:
    reviewers, finance = GroupFactory.create(name="reviewers"), GroupFactory.create(name="finance")
    return {
        "alex": make_approver(reviewers, username="alex"),
        "fiona": make_approver(finance, username="fiona"),
        "rita": make_requester(username="rita"),
        "admin": UserFactory.create(username="admin", is_staff=True, is_superuser=True),
    }


@pytest.fixture
def expense(people: dict[str, User], tmp_path: Path) -> RequestType:
    """The expense type, loaded and published from its file as v1."""
    run("policy_load", str(write(tmp_path / "expense.yaml", expense_file())), publish=True)
    expense = RequestType.objects.get(slug="expense")
    assign_perm("approvals.submit_requesttype", roles_sync()[REQUESTERS], expense)
    return expense


# --- policy_load ---------------------------------------------------------------------------


def test_policy_load_publishes_a_directory_of_files_and_a_second_run_changes_nothing(people, tmp_path):
    # given a directory with a YAML and a JSON policy file (and a file that is not a policy)
    folder = tmp_path / "policies"
    write(folder / "expense.yaml", expense_file())
    general = {
        "request_type": "general",
        "stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}}],
    }
    write(folder / "general.json", general)
    write(folder / "README.txt", "not a policy")

    # when it is loaded with --publish by an admin
    out, err = run("policy_load", str(folder), publish=True, actor="admin")

    # then each policy file gets one line, both types exist with their first version published
    assert out.splitlines() == [
        f"{folder / 'expense.yaml'}: Expense claim v1 published",
        f"{folder / 'general.json'}: General v1 published",
    ]
    assert err == ""
    expense = RequestType.objects.get(slug="expense")
    assert expense.payload_schema == SCHEMA
    assert expense.current_policy is not None
    assert expense.current_policy.is_published
    assert expense.current_policy.published_by == people["admin"]
    assert expense.current_policy.created_by == people["admin"]
    assert expense.current_policy.source == str(folder / "expense.yaml")

    # when it is loaded again
    out, _ = run("policy_load", str(folder), publish=True)

    # then nothing new is made
    assert out.splitlines() == [
        f"{folder / 'expense.yaml'}: Expense claim v1 already published",
        f"{folder / 'general.json'}: General v1 already published",
    ]
    assert PolicyVersion.objects.count() == 2


def test_policy_load_without_publish_adds_a_draft_once(people, expense, tmp_path):
    # given the published expense policy, and a file that changes its threshold
    changed = write(tmp_path / "expense-next.yaml", expense_file(threshold=5000))

    # when the file is loaded without --publish, twice
    first, _ = run("policy_load", str(changed))
    second, _ = run("policy_load", str(changed))

    # then one draft v2 is made and the type still follows v1
    assert first.strip() == f"{changed}: Expense claim v2 new draft"
    assert second.strip() == f"{changed}: Expense claim v2 unchanged"
    expense.refresh_from_db()
    assert expense.current_policy.number == 1
    assert list(expense.policy_versions.values_list("number", "status")) == [(2, "draft"), (1, "published")]


def test_policy_load_reports_every_problem_of_every_file_and_loads_the_good_ones(people, tmp_path):
    # given a good file, a file that is not YAML, a file with structural problems and one
    # that reads as a policy but may not be published (a group that does not exist)
    good = write(tmp_path / "a-good.yaml", expense_file())
    not_yaml = write(tmp_path / "b-broken.yaml", "stages: [\n  - name: review\n")
    structure = write(
        tmp_path / "c-structure.yaml",
        {
            "request_type": "odd",
            "stages": [{"name": "ok", "approvers": {"groups": ["reviewers"]}, "rule": "most", "sla": "soon"}],
        },
    )
    unpublishable = write(
        tmp_path / "d-ghosts.json",
        {"request_type": "ghostly", "stages": [{"name": "review", "approvers": {"groups": ["ghosts"]}}]},
    )

    # when they are loaded together
    out, err, message = run_failing(
        "policy_load", str(good), str(not_yaml), str(structure), str(unpublishable), publish=True
    )

    # then the good one is loaded, and every problem line names its file
    assert out.strip() == f"{good}: Expense claim v1 published"
    lines = err.splitlines()
    assert any(line.startswith(f"{not_yaml}: cannot read it:") for line in lines)
    assert [line for line in lines if line.startswith(f"{structure}: ")] == [
        f"{structure}: stage 1 'ok': 'rule' must be one of any, all, quorum (got 'most')",
        f"{structure}: stage 1 'ok': 'sla' must be a duration such as 30m, 4h, 2d or P2DT4H (got 'soon')",
    ]
    assert f"{unpublishable}: stage 1 'review': group 'ghosts' does not exist" in lines
    assert message == f"{len(lines)} problem(s); the files with problems were not loaded."
    # and nothing of a broken file was kept
    assert set(RequestType.objects.values_list("slug", flat=True)) == {"expense"}


def test_policy_load_refuses_a_missing_path_and_an_unknown_actor(people, tmp_path):
    # when a path names nothing
    _, err, _ = run_failing("policy_load", str(tmp_path / "nowhere.yaml"))
    # then it says so
    assert err.strip() == f"{tmp_path / 'nowhere.yaml'}: no such file or directory"

    # when the actor does not exist
    _, _, message = run_failing(
        "policy_load", str(write(tmp_path / "e.yaml", expense_file())), actor="nobody"
    )
    # then nothing is loaded
    assert message == "There is no active user 'nobody'."
    assert not RequestType.objects.exists()


# --- policy_check --------------------------------------------------------------------------


def test_policy_check_passes_the_published_versions_then_lists_each_problem_of_a_draft(expense, people):
    # given the published expense v1
    out, _ = run("policy_check")
    assert out.strip() == "OK: 1 checked, no problems (expense v1)."

    # and a draft v2 naming a group that does not exist and a field the schema lacks
    document = expense_file()
    document["stages"][1] = {
        "name": "finance",
        "when": {"field": "total", "op": "gt", "value": 10},
        "approvers": {"groups": ["ghosts"]},
    }
    del document["request_type"]
    policy_draft_create(request_type=expense, document=document, actor=None)

    # when the database is checked
    out, _, message = run_failing("policy_check")

    # then each problem is one line, "<type> v<n>: <problem>"
    assert out.splitlines() == [
        "expense v2: stage 2 'finance': group 'ghosts' does not exist",
        "expense v2: stage 2 'finance': condition on 'total': the payload schema has no such field",
    ]
    assert message == "2 problem(s) in 1 of 2 checked."


def test_policy_check_of_a_type_only_checks_that_type(expense, people):
    # given another type whose draft cannot be published
    other = RequestType.objects.create(slug="other", name="Other")
    policy_draft_create(
        request_type=other,
        document={"stages": [{"name": "x", "approvers": {"users": ["nobody"]}}]},
        actor=None,
    )

    # when only expense is checked, then the other type's problem is not reported
    out, _ = run("policy_check", type="expense")
    assert out.strip() == "OK: 1 checked, no problems (expense v1)."
    # when the other is checked, then its problem is
    out, _, _ = run_failing("policy_check", type="other")
    assert out.strip() == "other v1: stage 1 'x': user 'nobody' does not exist or is not active"
    # when the type does not exist, then the known ones are named
    _, _, message = run_failing("policy_check", type="nope")
    assert message == "There is no request type 'nope' (types: expense, other)."


def test_policy_check_of_files_uses_the_schema_in_the_file_or_else_the_type_in_the_database(
    expense, people, tmp_path
):
    # given a good file, and two files without a schema comparing amount with text:
    # one for the existing expense type, one for a type not in the database
    good = write(tmp_path / "good.yaml", expense_file())
    wrong_type = expense_file(schema=None)
    wrong_type["stages"][1]["when"] = {"field": "amount", "op": "eq", "value": "a lot"}
    existing = write(tmp_path / "existing.yaml", wrong_type)
    unknown = write(tmp_path / "unknown.yaml", {**wrong_type, "request_type": "newtype"})

    # when the good file is checked, then it passes and nothing is loaded
    out, _ = run("policy_check", str(good))
    assert out.strip() == f"OK: 1 checked, no problems ({good})."
    assert PolicyVersion.objects.count() == 1

    # when the others are checked
    out, _, message = run_failing("policy_check", str(existing), str(unknown))

    # then the first is checked against expense's schema in the database (amount is a
    # number) and the second against no schema at all
    assert out.splitlines() == [
        f"{existing}: stage 2 'finance': condition 'amount = 'a lot'': 'amount' is number, but 'a lot' is string",
        f"{unknown}: stage 2 'finance': condition on 'amount': the payload schema has no such field",
    ]
    assert message == "2 problem(s) in 2 of 2 checked."


def test_policy_check_of_files_reports_unreadable_files_and_filters_by_type(expense, people, tmp_path):
    # given an unreadable file and a good file of another type
    broken = write(tmp_path / "broken.json", "{not json")
    other = write(
        tmp_path / "other.yaml",
        {"request_type": "other", "stages": [{"name": "r", "approvers": {"groups": ["reviewers"]}}]},
    )

    # when the files are checked for type "other" only
    out, _, _ = run_failing("policy_check", str(broken), str(other), type="other")

    # then the unreadable file is still reported (it has no type to filter by)
    assert out.startswith(f"{broken}: cannot read it:")
    assert str(other) not in out


# --- policy_move ---------------------------------------------------------------------------


@pytest.fixture
def in_flight(expense, people) -> dict[str, ApprovalRequest]:
    """Two requests under expense v1: one in review, one waiting for changes."""
    in_review = make_request(requester=people["rita"], request_type=expense, payload={"amount": 50})
    waiting = make_request(requester=people["rita"], request_type=expense, payload={"amount": 50})
    request_act(request_id=waiting.pk, action="request_changes", actor=people["alex"], comment="Receipt?")
    return {"in_review": in_review, "waiting": waiting}


@pytest.fixture
def expense_v2(in_flight, expense, tmp_path) -> PolicyVersion:
    """Expense v2, published after the requests were submitted: review now goes to finance."""
    document = expense_file()
    document["stages"][0]["approvers"] = {"groups": ["finance"]}
    run("policy_load", str(write(tmp_path / "expense-v2.yaml", document)), publish=True)
    return expense.policy_versions.get(number=2)


def test_policy_move_dry_run_reports_each_request_and_changes_nothing(expense, in_flight, expense_v2):
    # given two requests in flight under v1, and v2 published
    v1 = expense.policy_versions.get(number=1)
    audit_before = AuditEntry.objects.count()
    handoffs_before = sorted(Handoff.objects.open().values_list("pk", flat=True))

    # when the move to v2 is planned (no --apply)
    out, _ = run("policy_move", type="expense", to=2)

    # then each request gets a line saying where it lands and whose handoffs change
    in_review, waiting = in_flight["in_review"], in_flight["waiting"]
    assert out.splitlines() == [
        f"{in_review.reference} (In review): v1 stage 'review' → stage 'review'; "
        "closes reviewers; opens group finance",
        f"{waiting.reference} (Changes requested): v1 waiting for changes → waiting for changes",
        "Dry run: 2 request(s) would move to expense v2. Nothing changed; run again with --apply to move them.",
    ]
    # and nothing changed
    assert set(ApprovalRequest.objects.values_list("policy_version", flat=True)) == {v1.pk}
    assert AuditEntry.objects.count() == audit_before
    assert sorted(Handoff.objects.open().values_list("pk", flat=True)) == handoffs_before


def test_policy_move_apply_moves_each_request_in_an_audited_transition(
    expense, in_flight, expense_v2, people
):
    # given two requests in flight under v1, and v2 published
    v1 = expense.policy_versions.get(number=1)

    # when an admin applies the move
    out, _ = run("policy_move", type="expense", to=2, apply=True, actor="admin")

    # then both follow v2 and say so
    in_review, waiting = in_flight["in_review"], in_flight["waiting"]
    lines = out.splitlines()
    assert lines[0].startswith(f"moved: {in_review.reference} (In review): v1 stage 'review'")
    assert lines[1].startswith(f"moved: {waiting.reference} (Changes requested)")
    assert lines[2] == "Moved 2 request(s) to expense v2."
    for request in (in_review, waiting):
        request.refresh_from_db()
        assert request.policy_version_id == expense_v2.pk
        # and each audit trail ends with the move, by the admin, from v1 to v2
        last = AuditEntry.objects.for_instance(request).order_by("-seq").first()
        assert last.action == "move_policy"
        assert last.actor == people["admin"]
        assert last.data["policy"] == {"from": v1.pk, "to": expense_v2.pk}
    assert in_review.state == "in_review"
    assert waiting.state == "changes_requested"
    # and the request in review now waits for finance instead of the reviewers
    holders = Handoff.objects.for_instance(in_review).open()
    assert [h.candidate_group.name for h in holders] == ["finance"]

    # when the move is planned again, then nothing is left to move
    out, _ = run("policy_move", type="expense", to=2)
    assert out.strip().startswith("Dry run: 0 request(s) would move to expense v2.")


def test_policy_move_by_the_system_records_no_person(expense, in_flight, expense_v2):
    # when the move is applied without --actor
    run("policy_move", type="expense", to=2, apply=True)
    # then the audit entry of the move has no actor: the system moved it
    last = AuditEntry.objects.for_instance(in_flight["in_review"]).order_by("-seq").first()
    assert (last.action, last.actor) == ("move_policy", None)


def test_policy_move_refuses_bad_input_and_moves_nothing(expense, in_flight, expense_v2, people):
    # given a draft v3
    document = expense_file()
    del document["request_type"]
    policy_draft_create(request_type=expense, document=document, actor=None)

    # then each bad input is refused with its reason
    cases = [
        ({"type": "expense", "to": 2, "apply": True, "actor": "alex"}, "'alex' is not a superuser"),
        ({"type": "expense", "to": 2, "apply": True, "actor": "nobody"}, "There is no active user 'nobody'."),
        ({"type": "expense", "to": 9}, "expense has no version 9 (versions: 1, 2, 3)."),
        ({"type": "expense", "to": 3, "apply": True}, "Expense claim v3 is not a published version"),
        ({"type": "nope", "to": 1}, "There is no request type 'nope' (types: expense)."),
    ]
    for options, expected in cases:
        _, _, message = run_failing("policy_move", **options)
        assert message.startswith(expected), (options, message)
    # and nothing moved
    moved = ApprovalRequest.objects.filter(policy_version=expense_v2).exists()
    assert not moved
    assert not AuditEntry.objects.filter(action="move_policy").exists()


# --- policy_simulate -----------------------------------------------------------------------


@pytest.fixture
def demo() -> None:
    demo_load()


def test_policy_simulate_shows_the_route_with_skipped_stages_and_why(demo):
    # when a small expense claim by rita is simulated
    payload = json.dumps({"amount": 500, "currency": "EUR", "purpose": "Lunch"})
    out, _ = run("policy_simulate", type="expense", requester="rita", payload=payload)

    # then her manager approves it, and finance and the CFO are skipped with the reason
    assert out.splitlines() == [
        "expense v1 (published), requested by rita:",
        "  1. manager: Maria Manager; any one of them",
        "  2. finance: skipped (amount is 500, so amount > 1000 is false)",
        "  3. cfo: skipped (amount is 500, so amount > 10000 is false)",
    ]

    # when a large one is simulated under version 1 explicitly
    out, _ = run("policy_simulate", type="expense", requester="rita", payload='{"amount": 20000}', version=1)

    # then every stage applies, and the fields the form would refuse are named once each
    lines = out.splitlines()
    assert lines[1:4] == [
        "  1. manager: Maria Manager; any one of them",
        "  2. finance: group finance; any one of them",
        "  3. cfo: Carl Chief-Financial; any one of them",
    ]
    assert lines[4:] == [
        "note: submitting this payload would be refused: payload.currency: This field is required.",
        "note: submitting this payload would be refused: payload.purpose: This field is required.",
    ]


def test_policy_simulate_shows_a_quorum_stage_and_a_missing_manager(demo):
    # when owen, who has no manager, claims an expense
    out, _ = run("policy_simulate", type="expense", requester="owen", payload='{"amount": 10}')
    # then the manager stage goes to its escalation target, as submitting would
    assert (
        "  1. manager: group managers; any one of them — not enough approvers; handed to group managers"
        in out
    )
    # when a purchase order is simulated, then the committee's quorum is shown
    out, _ = run("policy_simulate", type="purchase", requester="rita")
    assert "  1. committee: Pat Procurement, Quinn Procurement, Rosa Procurement; 2 of them, no veto" in out


def test_policy_simulate_refuses_bad_input(demo):
    RequestType.objects.create(slug="empty", name="No policy yet")
    cases = [
        ({"type": "expense", "requester": "rita", "payload": "{amount: 1}"}, "--payload is not valid JSON"),
        ({"type": "expense", "requester": "rita", "payload": "[1, 2]"}, "--payload must be a JSON object"),
        ({"type": "expense", "requester": "ghost"}, "There is no active user 'ghost'."),
        ({"type": "expense", "requester": "rita", "version": 7}, "expense has no version 7 (versions: 1)."),
        ({"type": "empty", "requester": "rita"}, "empty has no published policy yet."),
        ({"type": "nope", "requester": "rita"}, "There is no request type 'nope'"),
    ]
    for options, expected in cases:
        _, _, message = run_failing("policy_simulate", **options)
        assert message.startswith(expected), (options, message)


def test_policy_load_of_the_demo_policies_is_idempotent_after_the_demo_data(demo):
    # when the demo's own policy files are loaded again
    out, _ = run("policy_load", str(POLICY_DIR), publish=True)
    # then each is already published, and policy_check finds nothing wrong with them
    assert [line.split(": ", 1)[1] for line in out.splitlines()] == [
        "Access request v1 already published",
        "Content publication v1 already published",
        "Expense claim v1 already published",
        "General request v1 already published",
        "Supplier invoice v1 already published",
        "New-hire onboarding v1 already published",
        "Purchase order v1 already published",
    ]
    out, _ = run("policy_check", str(POLICY_DIR))
    assert out.startswith("OK: 7 checked, no problems")
