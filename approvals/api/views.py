"""Request types and requests: thin views over approvals.services and the selectors."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import generics, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from approvals import policies
from approvals.api import serializers as s
from approvals.api.base import ApiMixin, ApiView, etag_of, if_match_check
from approvals.api.errors import PROBLEM_CONTENT_TYPE, PreconditionFailed, StateConflict
from approvals.api.representations import request_representation, request_summary
from approvals.expiry import expiry_terms
from approvals.models import ApprovalRequest, RequestType, State
from approvals.route.enter import route_simulate
from approvals.selectors.api import (
    request_detail,
    request_detail_of,
    request_visible_row,
    requests_visible,
)
from approvals.services import request_act, request_create
from workflows import errors

if TYPE_CHECKING:
    from rest_framework.request import Request

    from accounts.models import User

PROBLEMS = {
    code: OpenApiResponse(s.ProblemSerializer, description=text)
    for code, text in {
        400: "Invalid input (problem details naming each field).",
        401: "No valid credentials (expired, revoked or unknown token).",
        403: "Forbidden to act (the reason is the detail), or a read-only token writing.",
        404: "Not found, or not yours to see.",
        409: "Wrong state (the current state is given), or an Idempotency-Key still running.",
        412: "If-Match names a stale version.",
        422: "Idempotency-Key reused with another body.",
        429: "Too many requests (Retry-After).",
    }.items()
}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key and body gets the first answer (24 h); another body: 422.",
)


def problems(*codes: int) -> dict[Any, Any]:
    """The error answers of an operation, documented as application/problem+json."""
    return {(code, PROBLEM_CONTENT_TYPE): PROBLEMS[code] for code in (401, 429, *codes)}


def _visible_detail(*, request_id: Any, user: User) -> Any:
    detail = request_detail(request_id=request_id, user=user)
    if detail is None:
        raise errors.NotFound(f"Request {request_id} does not exist, or is not yours to see.")
    return detail


def represented(detail: Any, *, status_code: int = status.HTTP_200_OK) -> Response:
    response = Response(request_representation(detail), status=status_code)
    response["ETag"] = etag_of(detail.request)
    return response


# --- request types -------------------------------------------------------------------------


def type_json(request_type: RequestType, *, user: User) -> dict[str, Any]:
    return {
        "slug": request_type.slug,
        "name": request_type.name,
        "description": request_type.description,
        "payload_schema": request_type.payload_schema or {},
        "may_submit": policies.may_submit_type(user, request_type),
    }


def _active_type(slug: str) -> RequestType:
    found = RequestType.objects.select_related("current_policy").filter(slug=slug, is_active=True).first()
    if found is None:
        raise errors.NotFound(f"Request type '{slug}' does not exist.")
    return found


class RequestTypeList(ApiView):
    @extend_schema(
        operation_id="request_types_list", responses={200: s.RequestTypeSerializer(many=True), **problems()}
    )
    def get(self, request: Request) -> Response:
        """The active request types, each with its payload JSON Schema and whether you may submit it."""
        user = self.caller(request)
        types = RequestType.objects.filter(is_active=True).order_by("name")
        return Response([type_json(t, user=user) for t in types])


class RequestTypeDetail(ApiView):
    @extend_schema(responses={200: s.RequestTypeSerializer, **problems(404)})
    def get(self, request: Request, slug: str) -> Response:
        return Response(type_json(_active_type(slug), user=self.caller(request)))


class RequestTypeSimulate(ApiView):
    @extend_schema(
        request=s.SimulateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: dict, **problems(400, 404, 409, 422)},
    )
    def post(self, request: Request, slug: str) -> Response:
        """The route a request of this type with `payload` would take if you submitted it now."""
        request_type = _active_type(slug)
        body = s.SimulateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = request_type.current_policy.policy if request_type.current_policy else None
        if policy is None:
            raise errors.TransitionNotAllowed(f"{request_type} has no published policy yet.")
        route = route_simulate(
            policy=policy, payload=body.validated_data["payload"], requester=self.caller(request)
        )
        steps = [
            {
                "index": step.index,
                "stage": step.stage.name,
                "applies": step.applies,
                "reason": step.reason,
                "approvers": list(step.approvers),
                "problem": step.problem,
                "depends": step.depends,
            }
            for step in route.steps
        ]
        return Response({"type": request_type.slug, "steps": steps, "describe": route.describe()})


# --- requests ----------------------------------------------------------------------------------


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 moment, compared in UTC: any offset Python accepts (PostgreSQL refuses
    offsets beyond ±15:59 in a literal) reaches the database as UTC."""

    def filter(self, qs: Any, value: Any) -> Any:
        if value is not None:
            value = value.astimezone(UTC)
        return super().filter(qs, value)


class RequestFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="request_type__slug")
    state = django_filters.MultipleChoiceFilter(choices=State.choices)
    requester = django_filters.CharFilter(field_name="requester__username")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = UtcDateTimeFilter(field_name="updated_at", lookup_expr="lt")

    class Meta:
        model = ApprovalRequest
        fields: list[str] = []


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request: Request) -> Any:
        # A bad cursor is bad input naming its field (400), not a missing page (DRF's 404).
        try:
            return super().decode_cursor(request)
        except drf_exceptions.NotFound:
            raise drf_exceptions.ValidationError({"cursor": ["Not a cursor this API gave out."]}) from None


class RequestList(ApiMixin, generics.ListAPIView):  # type: ignore[misc]
    """Requests you may see, newest first, filtered and paged by cursor (`next`)."""

    filterset_class = RequestFilter
    pagination_class = NewestFirst
    serializer_class = s.RequestSummarySerializer

    def get_queryset(self) -> QuerySet[ApprovalRequest]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no caller
            return ApprovalRequest.objects.none()
        return requests_visible(self.caller(self.request))

    @extend_schema(responses={200: s.RequestSummarySerializer(many=True), **problems(400)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        assert page is not None
        return self.get_paginated_response([request_summary(r) for r in page])

    @extend_schema(
        request=s.RequestCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.RequestSerializer, **problems(400, 403, 404, 409, 422)},
    )
    def post(self, request: Request) -> Response:
        """Create a request: submitted for review, or a draft (`submit: false`); with an
        expiry (`expires_at` or `expires_in`) and what happens then (`on_expiry`)."""
        user = self.caller(request)
        body = s.RequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        request_type = RequestType.objects.filter(slug=data["type"], is_active=True).first()
        if request_type is None or not policies.may_submit_type(user, request_type):
            raise errors.InvalidInput(
                "Unknown request type.",
                field_errors={"type": [f"No request type '{data['type']}' you may submit."]},
            )
        expiry = expiry_terms(
            expires_at=data["expires_at"],
            expires_in=data["expires_in"],
            on_expiry=data["on_expiry"],
            escalate_user=data["escalate_to_user"],
            escalate_group=data["escalate_to_group"],
        )
        created = request_create(
            requester=user,
            request_type=request_type,
            title=data["title"],
            description=data["description"],
            payload=data["payload"],
            submit=data["submit"],
            expiry=expiry,
            callback_url=data["callback_url"],
        )
        response = represented(_visible_detail(request_id=created.pk, user=user), status_code=201)
        response["Location"] = f"/api/v1/requests/{created.pk}/"
        return response


class RequestDetailView(ApiView):
    @extend_schema(responses={200: s.RequestSerializer, 304: None, **problems(404)})
    def get(self, request: Request, pk: int) -> Response:
        """One request with its decisions, revisions, history and your available actions."""
        detail = _visible_detail(request_id=pk, user=self.caller(request))
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match and etag_of(detail.request) in [v.strip() for v in if_none_match.split(",")]:
            response = Response(status=status.HTTP_304_NOT_MODIFIED)
            response["ETag"] = etag_of(detail.request)
            return response
        return represented(detail)


class RequestAction(ApiView):
    @extend_schema(
        request=s.ActionSerializer,
        parameters=[
            OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False),
            IDEMPOTENCY_KEY,
        ],
        responses={200: s.RequestSerializer, **problems(400, 403, 404, 409, 412, 422)},
    )
    def post(self, request: Request, pk: int, name: str) -> Response:
        """Take an action (approve, reject, request_changes, resubmit, withdraw, cancel,
        submit, edit, complete, hand_back) with a comment; answers the new representation.
        With If-Match (or `expected_version`), a stale version is refused with 412."""
        user = self.caller(request)
        # Only visibility and the version are needed before acting: the full detail (history,
        # decisions, options) is read once, for the answer.
        target = request_visible_row(request_id=pk, user=user)
        if target is None:
            raise errors.NotFound(f"Request {pk} does not exist, or is not yours to see.")
        body = s.ActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        expected = if_match_check(http_request=request, request=target)
        if expected is None:
            expected = data["expected_version"]
        try:
            result = request_act(
                request_id=target.pk,
                action=name,
                actor=user,
                comment=data["comment"],
                on_behalf_of=data["on_behalf_of"],
                expected_version=expected,
                data=data["data"],
            )
        except errors.StaleVersion as exc:
            current = ApprovalRequest.objects.filter(pk=target.pk).values_list("version", flat=True).first()
            raise PreconditionFailed(exc.detail, version=current or 0) from None
        except errors.TransitionNotAllowed as exc:
            state = ApprovalRequest.objects.filter(pk=target.pk).values_list("state", flat=True).first()
            raise StateConflict(exc.detail, state=state or "") from None
        # The answer is built from the row the service saved, not read again, and without
        # a second visibility check: whoever could see a request and act on it still sees
        # it (they are its requester, see everything, or now closed one of its handoffs).
        acted = result.instance
        for related in ("requester", "request_type", "policy_version"):
            if getattr(acted, f"{related}_id") == getattr(target, f"{related}_id"):
                setattr(acted, related, getattr(target, related))
        return represented(request_detail_of(request=acted, user=user))
