"""A person's own account page: who they are, how long a session lasts, log out everywhere,
their API tokens."""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.sessions import LOGGED_IN_AT, sessions_end_everywhere
from accounts.tokens import (
    NAME_MAX,
    IssuedToken,
    TokenInputError,
    api_token_create,
    api_token_revoke,
    tokens_of,
)


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


class TokenForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX, help_text="What uses it, e.g. 'CI pipeline'.")
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Leave empty for a token that does not expire.",
    )
    read_only = forms.BooleanField(required=False, help_text="It may only read (GET).")


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """The person's API tokens; a new one's secret is shown once, in this answer only."""
    user = request.user
    assert isinstance(user, User)
    issued: IssuedToken | None = None
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = api_token_create(
                owner=user,
                name=form.cleaned_data["name"],
                expires_at=form.cleaned_data["expires_at"],
                read_only=form.cleaned_data["read_only"],
            )
        except TokenInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            form = TokenForm()
    response = render(
        request, "accounts/tokens.html", {"form": form, "tokens": tokens_of(user), "issued": issued}
    )
    # The secret is in this page only: never kept by a cache.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if api_token_revoke(token_id=token_id, actor=user) is None:
        raise Http404("No such token.")
    messages.success(request, "The token was revoked: it is refused from now on.")
    return redirect("accounts:tokens")
