"""Claiming and releasing an item offered to a group; snoozing one's own item."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from approvals import policies, selectors
from approvals.snoozing import SnoozeForm
from approvals.views.common import me
from approvals.views.request_refusals import HANDOFF, refuse_on_request_page
from approvals.views.requests import detail_context
from workflows import errors
from workflows.services import handoff_claim, handoff_snooze, handoff_unclaim


def _handoff_back(request: HttpRequest) -> HttpResponse:
    """Back where the person came from, if that is a page of this site; else their inbox."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("approvals:inbox")


def _handoff_change(request: HttpRequest, pk: int, *, claim: bool) -> HttpResponse:
    """Claim or release a handoff; a refusal is shown on the request's page with its status."""
    found = selectors.handoff_request(handoff_id=pk)
    if found is None or not policies.may_view(found[1], me(request)):
        raise Http404("No such item.")
    req = found[1]
    try:
        if claim:
            handoff_claim(handoff_id=pk, actor=me(request))
        else:
            handoff_unclaim(handoff_id=pk, actor=me(request))
    except errors.NotFound:
        raise Http404("No such item.") from None
    except errors.WorkflowError as exc:
        problem = f"{'Claim' if claim else 'Release'} refused: {exc.detail} Nothing was changed."
        return refuse_on_request_page(
            request,
            req.pk,
            form_name=HANDOFF,
            problem=problem,
            status=exc.http_status,
            context=lambda: detail_context(request, req.pk, problem=problem),
        )
    if claim:
        messages.success(request, f"Claimed {req.reference}: it is yours now.")
    else:
        messages.success(request, f"Released {req.reference}: it is back in its group's queue.")
    return _handoff_back(request)


@login_required
@require_POST
def handoff_claim_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _handoff_change(request, pk, claim=True)


@login_required
@require_POST
def handoff_unclaim_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _handoff_change(request, pk, claim=False)


@login_required
@require_POST
def handoff_snooze_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Put one's item aside until a follow-up time (or wake it); a refusal names why."""
    found = selectors.handoff_request(handoff_id=pk)
    if found is None or not policies.may_view(found[1], me(request)):
        raise Http404("No such item.")
    req = found[1]
    data = request.POST.copy()
    if request.GET.get("preset"):
        data["preset"] = request.GET["preset"]  # the inbox row's one-click button
    form = SnoozeForm(data)
    problem = ""
    if form.is_valid():
        now = timezone.now()
        until = form.moment(now=now)
        try:
            handoff_snooze(handoff_id=pk, actor=me(request), until=until, now=now)
        except errors.NotFound:
            raise Http404("No such item.") from None
        except errors.WorkflowError as exc:
            problem = (
                "; ".join(m for ms in exc.field_errors.values() for m in ms)
                if exc.field_errors
                else exc.detail
            )
            status = exc.http_status
        else:
            when = formats.date_format(timezone.localtime(until), "DATETIME_FORMAT") if until else ""
            messages.success(
                request,
                f"Snoozed {req.reference} until {when}."
                if until
                else f"{req.reference} is back in your inbox.",
            )
            return _handoff_back(request)
    else:
        problem = "; ".join(str(m) for ms in form.errors.values() for m in ms)
        status = 400
    context = detail_context(request, req.pk)
    context["problem"] = f"Snooze refused: {problem} Nothing was changed."
    return render(request, "approvals/request_detail.html", context, status=status)
