"""Post/redirect/get, also when a post is refused.

A refused form must not leave the browser on the address it posted to (`/act/`,
`/comments/`…): a reload would send it again. So a refused post is answered in one of two
ways, both showing the same errors beside the same fields:

- an htmx post gets the page's content at once (its `<main>`), with the errors, to swap in;
- any other post is remembered in the session (what was typed, the errors, the problem)
  and the browser is sent back to the page with 303 See Other; the page's GET takes the
  refusal out of the session (once) and shows the form as it was posted, answering with
  the refusal's status (400, 403, 409…) so that what the page says and its status agree.

Files cannot be kept in a session: a refused upload has to be chosen again (its error says
why it was refused).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from django import forms
from django.forms.utils import ErrorDict, ErrorList
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django_htmx.http import reswap, retarget

SESSION_KEY = "approvals.refused_post"
# Posted values never worth keeping: the CSRF token is renewed with the page.
NOT_KEPT = frozenset({"csrfmiddlewaretoken"})
# The most a refusal keeps of what was typed, in all: more (a post of megabytes) would
# bloat the session; the form then comes back empty, with its errors.
KEPT_MAX_CHARS = 256 * 1024
# A refusal is shown by the page the browser is sent to at once; one left behind (the
# person went elsewhere) must not surface on a later visit.
KEPT_SECONDS = 300
FRAGMENT_BASE = "_htmx_fragment.html"
PAGE_BASE = "base.html"

FormT = TypeVar("FormT", bound=forms.BaseForm)


@dataclass(frozen=True)
class Refusal:
    """A refused post as the page it came from shows it again."""

    path: str
    form: str  # which form of the page it was (a page may have several)
    data: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    problem: str = ""
    status: int = 400
    extra: dict[str, Any] = field(default_factory=dict)

    def bind(self, build: Callable[[QueryDict], FormT]) -> FormT:
        """The form built by `build` from the posted data, with the errors it had, as they
        were (not checked again: a service's refusal cannot be reproduced by the form)."""
        data = QueryDict(mutable=True)
        for name, values in self.data.items():
            data.setlist(name, values)
        form = build(data)
        # Django's own slot for a bound form's errors: set, the form is not cleaned again.
        cast(Any, form)._errors = ErrorDict(
            {name: ErrorList(messages) for name, messages in self.errors.items()}
        )
        return form


def _errors_of(form: forms.BaseForm | None) -> dict[str, list[str]]:
    if form is None or not form.is_bound:
        return {}
    return {name: [str(message) for message in messages] for name, messages in form.errors.items()}


def refuse(
    request: HttpRequest,
    *,
    back: str,
    query: str = "",
    form_name: str,
    form: forms.BaseForm | None = None,
    problem: str = "",
    status: int,
    page: Callable[[], tuple[str, dict[str, Any]]],
    anchor: str = "",
    extra: Mapping[str, Any] | None = None,
) -> HttpResponse:
    """Answer a refused post: `page()` (template, context) rendered as a fragment for htmx,
    with `status`; otherwise remember the refusal for `back` (a path of this site) and
    redirect there (303) with `?query` and `#anchor`, so the browser's address is the
    page's own."""
    if getattr(request, "htmx", False):
        template, context = page()
        context = {**context, "base_template": FRAGMENT_BASE}
        if problem and not context.get("problem"):
            context["problem"] = problem
        response = render(request, template, context, status=status)
        # Whatever the form aimed at, the page's content is what comes back.
        return reswap(retarget(response, "main"), "innerHTML")
    data = {k: v for k, v in request.POST.lists() if k not in NOT_KEPT}
    if sum(len(k) + sum(len(v) for v in vs) for k, vs in data.items()) > KEPT_MAX_CHARS:
        data = {}
    request.session[SESSION_KEY] = {
        "path": back,
        "form": form_name,
        "data": data,
        "errors": _errors_of(form),
        "problem": problem,
        "status": status,
        "at": time.time(),
        "extra": dict(extra or {}),
    }
    target = f"{back}?{query}" if query else back
    return HttpResponseRedirect(f"{target}#{anchor}" if anchor else target, status=303)


def take_refusal(request: HttpRequest) -> Refusal | None:
    """The refusal left for this page by `refuse`, once (a reload shows the page plain).
    A refusal left for another page is left where it is, and so is one asked for by a
    partial refresh (htmx, or live.js refreshing a region): the page itself shows it."""
    if getattr(request, "htmx", False) or request.headers.get("X-Requested-With") == "live":
        return None
    stored = request.session.get(SESSION_KEY)
    if not isinstance(stored, dict) or stored.get("path") != request.path:
        return None
    del request.session[SESSION_KEY]
    if time.time() - float(stored.get("at") or 0) > KEPT_SECONDS:
        return None
    return Refusal(
        path=str(stored["path"]),
        form=str(stored.get("form", "")),
        data={str(k): [str(v) for v in vs] for k, vs in (stored.get("data") or {}).items()},
        errors={str(k): [str(m) for m in ms] for k, ms in (stored.get("errors") or {}).items()},
        problem=str(stored.get("problem") or ""),
        status=int(stored.get("status") or 400),
        extra=dict(stored.get("extra") or {}),
    )
