"""A person's mail settings: their time zone and, per kind of notification, mail at once,
in a daily digest, or none."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from approvals.mailing import MAIL_KINDS, Delivery, deliveries, mail_preferences_save
from approvals.views.common import me
from workflows import errors


def _rows(chosen: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"kind": kind.value, "label": kind.label, "delivery": chosen.get(kind.value, Delivery.IMMEDIATE)}
        for kind in MAIL_KINDS
    ]


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def mail_preferences(request: HttpRequest) -> HttpResponse:
    user = me(request)
    chosen = {kind: delivery for (_, kind), delivery in deliveries([user.pk]).items()}
    field_errors: dict[str, list[str]] = {}
    time_zone = user.time_zone
    if request.method == "POST":
        time_zone = request.POST.get("time_zone", "")
        posted = {k.value: request.POST.get(f"kind_{k.value}", Delivery.IMMEDIATE) for k in MAIL_KINDS}
        try:
            mail_preferences_save(user=user, time_zone=time_zone, choices=posted)
        except errors.InvalidInput as exc:
            field_errors = exc.field_errors
            chosen = posted
        else:
            messages.success(request, "Your mail settings are saved.")
            return redirect("approvals:mail_preferences")
    context = {
        "rows": _rows(chosen),
        "deliveries": Delivery.choices,
        "time_zone": time_zone,
        "field_errors": field_errors,
        "no_address": not user.email,
    }
    return render(request, "approvals/mail_preferences.html", context, status=400 if field_errors else 200)
