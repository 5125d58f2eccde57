"""Opening an action link from a mail: a confirmation page (GET never acts), then the POST
from that page acts. A link that cannot act says why and changes nothing."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from approvals.action_links import LinkClaim, LinkProblem, action_link_read
from approvals.models import ApprovalRequest
from approvals.services import action_link_use
from approvals.views.common import me
from workflows import errors

PROBLEM_STATUS = {"invalid": 400, "expired": 410, "used": 410, "other_user": 403}


def _page(
    request: HttpRequest, token: str, claim: LinkClaim, *, problem: str = "", status: int = 200
) -> HttpResponse:
    req = ApprovalRequest.objects.select_related("request_type", "requester").get(pk=claim.request_id)
    context = {
        "token": token,
        "req": req,
        "action": claim.action,
        "problem": problem,
        "comment": request.POST.get("comment", ""),
    }
    return render(request, "approvals/action_link.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def action_link(request: HttpRequest, token: str) -> HttpResponse:
    user = me(request)
    try:
        claim = action_link_read(token, user=user)
    except LinkProblem as exc:
        return render(
            request, "approvals/action_link.html", {"link_problem": exc}, status=PROBLEM_STATUS[exc.reason]
        )
    if request.method != "POST":
        return _page(request, token, claim)
    try:
        result = action_link_use(token, user=user, comment=request.POST.get("comment", "").strip())
    except LinkProblem as exc:
        return render(
            request, "approvals/action_link.html", {"link_problem": exc}, status=PROBLEM_STATUS[exc.reason]
        )
    except errors.WorkflowError as exc:
        reason = (
            "; ".join(m for ms in exc.field_errors.values() for m in ms) if exc.field_errors else exc.detail
        )
        return _page(request, token, claim, problem=f"{reason} Nothing was changed.", status=exc.http_status)
    messages.success(
        request, f"Done: {claim.action.done}. {result.instance} is now {result.instance.get_state_display()}."
    )
    return redirect("approvals:request_detail", pk=claim.request_id)
