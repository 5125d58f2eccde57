"""A person's own account page: who they are, how long a session lasts, log out everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.sessions import LOGGED_IN_AT, sessions_end_everywhere


@login_required
def account(request: HttpRequest) -> HttpResponse:
    logged_in_at = request.session.get(LOGGED_IN_AT)
    context = {
        "logged_in_at": (
            datetime.fromtimestamp(logged_in_at, tz=UTC) if isinstance(logged_in_at, int | float) else None
        ),
        "idle_minutes": settings.SESSION_IDLE_TIMEOUT // 60,
        "absolute_hours": round(settings.SESSION_ABSOLUTE_TIMEOUT / 3600, 1),
    }
    return render(request, "accounts/account.html", context)


@require_POST
@login_required
def log_out_everywhere(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    sessions_end_everywhere(user)
    logout(request)
    messages.success(request, "You were logged out everywhere: every session of yours has ended.")
    return redirect(settings.LOGIN_URL)
