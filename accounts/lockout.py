"""Login throttling and lockout (django-axes): limits, the client's address, the answer.

Failures are counted per user name and, separately, per client address. A user name is
locked after LOGIN_FAILURE_LIMIT failures, an address after LOGIN_FAILURE_LIMIT_PER_ADDRESS
(higher: many people may share one address). While locked, every login for it is refused
before a password is checked, the right one included, until the cool-off ends or an
administrator unlocks it. Each lockout is logged on `baton.security` and every failure
is kept in axes' AccessFailureLog (admin: Axes > Access failures).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_lockout_parameters
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

logger = logging.getLogger("baton.security")

LOCKOUT_STATUS = 429


def client_address(request: HttpRequest) -> str | None:
    """The address the client connected from, as the outermost trusted proxy saw it.

    With TRUSTED_PROXY_COUNT = N proxies in front, each appending the address it received
    from to X-Forwarded-For, the client's address is the N-th entry from the right; what
    stands left of it was written by the client and is never trusted. Without proxies (or
    when the header is short or malformed, i.e. the request did not come through them) it
    is the connection's own address.
    """
    remote = request.META.get("REMOTE_ADDR")
    hops = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler, with a limit per user name and a higher one per address.

    Axes compares one number with one limit (AXES_FAILURE_LIMIT, the per-user-name limit);
    an address's failures are scaled so that it reaches that number exactly at its own
    limit: floor(failures * user limit / address limit) >= user limit exactly when failures >= address limit.
    """

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        user_limit = int(settings.AXES_FAILURE_LIMIT)
        address_limit = max(int(getattr(settings, "LOGIN_FAILURE_LIMIT_PER_ADDRESS", user_limit)), 1)
        parameters = get_lockout_parameters(request, credentials)
        worst = 0
        for parameter, attempts in zip(parameters, self.get_user_attempts(request, credentials), strict=True):
            failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            if parameter == "ip_address":
                failures = failures * user_limit // address_limit
            worst = max(worst, failures)
        return worst


def lockout_text() -> str:
    cool_off = settings.AXES_COOLOFF_TIME
    if cool_off:
        minutes = max(round(cool_off.total_seconds() / 60), 1)
        when = f"for {minutes} minute{'s' if minutes != 1 else ''}, or until an administrator unlocks it"
    else:
        when = "until an administrator unlocks it"
    return (
        "Too many failed logins for this user name or from this address. "
        f"Logging in is locked {when}, even with the right password."
    )


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """The login page again, saying it is locked and until when (429 Too Many Requests).

    Reads the user name from the form itself: axes' async path passes its arguments in
    another order, so neither `original_response` nor `credentials` is relied on.
    """
    username = request.POST.get("username", "") if request.method == "POST" else ""
    form = AuthenticationForm(request, initial={"username": username[:150]})
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    context = {"form": form, "next": next_url, "lockout": lockout_text()}
    return render(request, "registration/login.html", context, status=LOCKOUT_STATUS)


def lockout_logged(
    sender: Any, request: Any = None, username: Any = None, ip_address: Any = None, **_: Any
) -> None:
    """axes' user_locked_out signal: one clear line for the operators."""
    failures = getattr(request, "axes_failures_since_start", None)
    logger.warning(
        "login locked out: user name %r, address %s, after %s failed attempt(s); "
        "unlock with `manage.py axes_reset_username` / `axes_reset_ip` or in the admin (Access attempts)",
        username,
        ip_address,
        failures if failures is not None else "repeated",
    )
