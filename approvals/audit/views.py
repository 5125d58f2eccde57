"""The auditors' pages. Thin: parse the filter, call a selector, render or stream.

GET only (every view is require_safe: a POST answers 405), so an auditor changes nothing
here; the auditor role grants no action anywhere else either. Each answer carries a
strict Content-Security-Policy: the pages use no inline script or style.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from accounts.models import User
from approvals import policies
from approvals.audit import bundle, evidence, export, selectors, sod
from approvals.audit.filters import AuditFilter, AuditFilterForm
from approvals.models import ApprovalRequest, AuditExport
from workflows import checkpoints

PAGE_SIZE = 50
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

View = Callable[..., HttpResponseBase]


def _me(request: HttpRequest) -> User:
    return cast(User, request.user)


def strict_csp(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response.headers["Content-Security-Policy"] = CSP
        return response

    return wrapped


def auditors_only(view: View) -> View:
    """Logged in, an auditor or a superuser, GET only; everyone else is refused (403)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not policies.may_audit(_me(request)):
            raise PermissionDenied("Only auditors can read the audit trail.")
        return view(request, *args, **kwargs)

    return login_required(require_safe(strict_csp(wrapped)))


def _filter(request: HttpRequest) -> tuple[AuditFilterForm, AuditFilter | None]:
    form = AuditFilterForm(request.GET)
    return form, (form.audit_filter() if form.is_valid() else None)


@auditors_only
def log(request: HttpRequest) -> HttpResponseBase:
    form, audit_filter = _filter(request)
    if audit_filter is None:
        return render(request, "audit/log.html", {"form": form, "page": None}, status=400)
    page = selectors.audit_page(
        audit_filter=audit_filter, before=form.cleaned_data.get("before") or "", limit=PAGE_SIZE
    )
    query = urlencode(audit_filter.query())
    return render(
        request,
        "audit/log.html",
        {"form": form, "page": page, "query": query, "filtered": not audit_filter.is_empty},
    )


@auditors_only
def entry_raw(request: HttpRequest, pk: int) -> HttpResponseBase:
    entry = selectors.audit_entry(pk)
    if entry is None:
        raise Http404("No such entry.")
    row = selectors.audit_rows([entry])[0]
    document = json.dumps(selectors.entry_document(entry), indent=2, ensure_ascii=False, sort_keys=True)
    return render(request, "audit/entry.html", {"row": row, "document": document})


def _stream(request: HttpRequest, stream: Any, *, content_type: str, filename: str) -> StreamingHttpResponse:
    content = export.export_stream_async(stream) if isinstance(request, ASGIRequest) else stream
    response = StreamingHttpResponse(content, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@auditors_only
def export_log(request: HttpRequest, fmt: str) -> HttpResponseBase:
    form, audit_filter = _filter(request)
    if audit_filter is None:
        return render(request, "audit/log.html", {"form": form, "page": None}, status=400)
    started = export.export_start(user=_me(request), audit_filter=audit_filter, fmt=fmt)
    stream = export.export_stream(export=started, audit_filter=audit_filter, user=_me(request))
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return _stream(
        request, stream, content_type=content_type, filename=f"baton-audit-{started.reference}.{fmt}"
    )


def _bundle_response(request: HttpRequest, audit_filter: AuditFilter) -> FileResponse:
    user = _me(request)
    started = export.export_start(user=user, audit_filter=audit_filter, fmt=AuditExport.Format.BUNDLE)
    out = tempfile.TemporaryFile()  # noqa: SIM115  (FileResponse closes it once sent)
    bundle.bundle_write(out=out, audit_filter=audit_filter, user=user, export=started)
    out.seek(0)
    return FileResponse(
        out, as_attachment=True, filename=bundle.bundle_name(started), content_type="application/zip"
    )


@auditors_only
def bundle_range(request: HttpRequest) -> HttpResponseBase:
    form, audit_filter = _filter(request)
    if audit_filter is None:
        return render(request, "audit/log.html", {"form": form, "page": None}, status=400)
    return _bundle_response(request, audit_filter)


@login_required
@require_safe
@strict_csp
def evidence_page(request: HttpRequest, pk: int) -> HttpResponseBase:
    page = evidence.evidence_page(request_id=pk, user=_me(request))
    if page is None:
        raise Http404("No such request.")
    return render(
        request, "audit/evidence.html", {"page": page, "may_audit": policies.may_audit(_me(request))}
    )


@login_required
@require_safe
@strict_csp
def bundle_request(request: HttpRequest, pk: int) -> HttpResponseBase:
    found = ApprovalRequest.objects.filter(pk=pk).first()
    # Who may not see the request learns nothing of it; who may see it but is no auditor
    # is refused the export.
    if found is None or not policies.may_view_evidence(found, _me(request)):
        raise Http404("No such request.")
    if not policies.may_audit(_me(request)):
        raise PermissionDenied("Only auditors export evidence bundles.")
    return _bundle_response(request, AuditFilter(ref=found.reference))


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@auditors_only
def sod_page(request: HttpRequest) -> HttpResponseBase:
    period = request.GET.get("period") or "month"
    if period not in sod.PERIODS:
        period = "month"
    since, until = _date(request.GET.get("since", "")), _date(request.GET.get("until", ""))
    report = sod.sod_report(since=since, until=until, period=period)
    return render(request, "audit/sod.html", {"report": report, "periods": sod.PERIODS})


@auditors_only
def checkpoint_list(request: HttpRequest) -> HttpResponseBase:
    key = checkpoints.signing_key_present()
    key_id = checkpoints.public_key_id(key) if key is not None else ""
    recent = list(checkpoints.AuditCheckpoint.objects.order_by("-id")[:100])
    return render(request, "audit/checkpoints.html", {"checkpoints": recent, "key_id": key_id})


@auditors_only
def checkpoint_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    found = checkpoints.AuditCheckpoint.objects.filter(pk=pk).first()
    if found is None:
        raise Http404("No such checkpoint.")
    pieces = (piece.encode("utf-8") for piece in checkpoints.checkpoint_file_lines(found))
    return _stream(
        request, pieces, content_type="application/json", filename=f"baton-checkpoint-{found.pk}.json"
    )


@auditors_only
def public_key(request: HttpRequest) -> HttpResponseBase:
    key = checkpoints.signing_key_present()
    if key is None:
        raise Http404(
            "No audit signing key yet: it is made with the first checkpoint (embedded) or configured."
        )
    pem = checkpoints.public_key_pem(key)
    response = HttpResponse(pem, content_type="application/x-pem-file")
    response.headers["Content-Disposition"] = 'attachment; filename="baton-public-key.pem"'
    return response


@auditors_only
def export_list(request: HttpRequest) -> HttpResponseBase:
    exports = list(AuditExport.objects.select_related("exported_by").order_by("-id")[:100])
    return render(request, "audit/exports.html", {"exports": exports})
