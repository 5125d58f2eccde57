"""The caller's inbox and its items (claim, release, reassign), and the audit trail for
auditors (the web log's filters, CSV / JSON Lines export)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf
from rest_framework.response import Response

from approvals import policies
from approvals.api import serializers as s
from approvals.api.base import ApiView
from approvals.api.representations import handoff_json, history_json, person, request_summary
from approvals.api.views import IDEMPOTENCY_KEY, problems
from approvals.audit import export, selectors
from approvals.audit.filters import AuditFilter, AuditFilterForm
from approvals.models import AuditExport
from approvals.reassignment import requests_reassign
from approvals.selectors.inbox import DUES, SORTS, InboxFilter, inbox_page
from approvals.selectors.request_page import handoff_request
from workflows import errors
from workflows.models import Handoff
from workflows.services import handoff_claim, handoff_unclaim

if TYPE_CHECKING:
    from rest_framework.request import Request

    from accounts.models import User

INBOX_VIEWS = ("all", "mine", "queue", "delegated")
EXPORT_FORMATS = (AuditExport.Format.CSV.value, AuditExport.Format.JSONL.value)


class InboxQuerySerializer(drf.Serializer[Any]):
    view = drf.ChoiceField(choices=INBOX_VIEWS, required=False, default="all")
    type = drf.CharField(required=False, default="", max_length=80)
    group = drf.CharField(required=False, default="", max_length=150)
    stage = drf.CharField(required=False, default="", max_length=50)
    requester = drf.CharField(required=False, default="", max_length=150)
    due = drf.ChoiceField(choices=("", *DUES), required=False, default="")
    q = drf.CharField(required=False, default="", max_length=200)
    sort = drf.ChoiceField(choices=SORTS, required=False, default="due")
    cursor = drf.CharField(required=False, default="", max_length=100)
    page_size = drf.IntegerField(required=False, default=50, min_value=1, max_value=200)


class Inbox(ApiView):
    @extend_schema(parameters=[InboxQuerySerializer], responses={200: dict, **problems(400)})
    def get(self, request: Request) -> Response:
        """What waits for you: your items, your groups' unclaimed ones, and those of people
        who delegated to you; with the inbox's filters, paged by `next` cursor."""
        query = InboxQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = dict(query.validated_data)
        cursor, limit = data.pop("cursor"), data.pop("page_size")
        filters = InboxFilter(**{("request_type" if k == "type" else k): v for k, v in data.items()})
        page = inbox_page(user=self.caller(request), filters=filters, cursor=cursor, limit=limit)
        return Response(
            {
                "results": [
                    {
                        "handoff": handoff_json(row.handoff),
                        "request": request_summary(row.request),
                        "overdue": row.overdue,
                        "due_soon": row.due_soon,
                        "on_behalf_of": person(row.on_behalf_of),
                    }
                    for row in page.rows
                ],
                "counts": {
                    "mine": page.counts.mine,
                    "queue": page.counts.queue,
                    "delegated": page.counts.delegated,
                    "overdue": page.counts.overdue,
                },
                "next_cursor": page.next_cursor or None,
            }
        )


def _visible_handoff(*, handoff_id: int, user: User) -> Handoff:
    found = handoff_request(handoff_id=handoff_id)
    if found is None or not policies.may_view(found[1], user):
        raise errors.NotFound(f"Item {handoff_id} does not exist, or is not yours to see.")
    return found[0]


class HandoffClaim(ApiView):
    @extend_schema(
        request=None, parameters=[IDEMPOTENCY_KEY], responses={200: dict, **problems(400, 403, 404, 409, 422)}
    )
    def post(self, request: Request, pk: int) -> Response:
        """Claim an item offered to your group: it is yours until you release it."""
        user = self.caller(request)
        handoff = _visible_handoff(handoff_id=pk, user=user)
        return Response(handoff_json(handoff_claim(handoff_id=handoff.pk, actor=user)))


class HandoffRelease(ApiView):
    @extend_schema(
        request=None, parameters=[IDEMPOTENCY_KEY], responses={200: dict, **problems(400, 403, 404, 409, 422)}
    )
    def post(self, request: Request, pk: int) -> Response:
        """Give a claimed item back to its group (its claimant or a manager)."""
        user = self.caller(request)
        handoff = _visible_handoff(handoff_id=pk, user=user)
        return Response(handoff_json(handoff_unclaim(handoff_id=handoff.pk, actor=user)))


class HandoffReassign(ApiView):
    @extend_schema(
        request=s.ReassignSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: dict, **problems(400, 403, 404, 409, 422)},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Hand an item to another person or group, with a reason (managers, or its holder)."""
        user = self.caller(request)
        body = s.ReassignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        (result,) = requests_reassign(
            actor=user,
            handoff_ids=[pk],
            reason=data["reason"],
            to_user=data["to_user"],
            to_group=data["to_group"],
        )
        if result.error is not None:
            raise result.error
        assert result.successor is not None
        return Response(handoff_json(result.successor))


# --- the audit trail ---------------------------------------------------------------------------

AUDIT_PARAMETERS = [
    OpenApiParameter(name, str, required=False, description=text)
    for name, text in {
        "actor": "user name",
        "on_behalf_of": "user name",
        "since": "YYYY-MM-DD",
        "until": "YYYY-MM-DD",
        "type": "request type slug",
        "action": "an action or a kind (decisions, claims, system ...)",
        "ref": "REQ-8",
        "text": "comment contains",
        "before": "the cursor of the previous page",
    }.items()
]


def _audit_filter(request: Request, user: User) -> AuditFilter:
    """The web log's filter, from the query; auditors only (403 for everyone else)."""
    if not policies.may_audit(user):
        raise errors.Forbidden("Only auditors can read the audit trail.")
    form = AuditFilterForm(request.query_params)
    if not form.is_valid():
        raise errors.InvalidInput(
            "The filter is not valid.",
            field_errors={name: [str(m) for m in messages] for name, messages in form.errors.items()},
        )
    return form.audit_filter()


class AuditEntries(ApiView):
    @extend_schema(parameters=AUDIT_PARAMETERS, responses={200: dict, **problems(400, 403)})
    def get(self, request: Request) -> Response:
        """Audit entries, newest first, with the web log's filters; `next_cursor` pages on."""
        audit_filter = _audit_filter(request, self.caller(request))
        form = AuditFilterForm(request.query_params)
        form.is_valid()
        page = selectors.audit_page(audit_filter=audit_filter, before=form.cleaned_data.get("before") or "")
        return Response(
            {
                "results": [
                    {**history_json(row.entry), "id": row.entry.pk, "reference": row.reference}
                    for row in page.rows
                ],
                "count": page.count,
                "count_capped": page.count_capped,
                "next_cursor": page.next_cursor,
            }
        )


class AuditExportView(ApiView):
    @extend_schema(
        parameters=[*AUDIT_PARAMETERS, OpenApiParameter("as", str, enum=list(EXPORT_FORMATS))],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="as=csv"),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="as=jsonl"),
            **problems(400, 403),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        """The filtered trail as CSV or JSON Lines, ending with its completeness record
        (the export is itself audited, as from the web)."""
        user = self.caller(request)
        audit_filter = _audit_filter(request, user)
        # `as`, not `format`: DRF reads `format` to choose its own renderer.
        fmt = request.query_params.get("as", AuditExport.Format.JSONL.value)
        if fmt not in EXPORT_FORMATS:
            raise errors.InvalidInput(
                "Unknown format.", field_errors={"as": [f"Choose one of: {', '.join(EXPORT_FORMATS)}."]}
            )
        started = export.export_start(user=user, audit_filter=audit_filter, fmt=fmt)
        stream = export.export_stream(export=started, audit_filter=audit_filter, user=user)
        content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
        response = StreamingHttpResponse(stream, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="baton-audit-{started.reference}.{fmt}"'
        return response
