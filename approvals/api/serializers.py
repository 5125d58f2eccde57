"""What the API reads from clients (checked, naming each bad field) and the shapes it
answers with (also the OpenAPI schema's)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from rest_framework import serializers

from accounts.models import User
from approvals.models import OnExpiry


class ProblemFieldSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    state = serializers.CharField(required=False, help_text="409: the request's current state.")
    version = serializers.IntegerField(required=False, help_text="412: the request's current version.")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # 'errors' is a Serializer attribute of its own: the field is added by name.
        fields = super().get_fields()
        fields["errors"] = ProblemFieldSerializer(many=True, required=False)
        return fields


class UsernameField(serializers.SlugRelatedField):
    """A person named by user name (active people only)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="username", queryset=User.objects.filter(is_active=True), **kwargs)


class RequestCreateSerializer(serializers.Serializer[Any]):
    type = serializers.SlugField(help_text="The request type's slug.")
    title = serializers.CharField(max_length=200, allow_blank=True, trim_whitespace=True)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    payload = serializers.DictField(required=False, default=dict)
    submit = serializers.BooleanField(required=False, default=True, help_text="False: keep it as a draft.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    expires_in = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Seconds from now (instead of expires_at)."
    )
    on_expiry = serializers.ChoiceField(
        choices=OnExpiry.choices, required=False, allow_null=True, default=None
    )
    escalate_to_user = UsernameField(required=False, allow_null=True, default=None)
    escalate_to_group = serializers.SlugRelatedField(
        slug_field="name", queryset=Group.objects.all(), required=False, allow_null=True, default=None
    )
    callback_url = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=1000,
        help_text="Hears its decision or expiry.",
    )


class ActionSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    on_behalf_of = UsernameField(
        required=False, allow_null=True, default=None, help_text="Act for someone who delegated to you."
    )
    expected_version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # 'data' is a Serializer attribute of its own: the field is added by name.
        fields = super().get_fields()
        fields["data"] = serializers.DictField(
            required=False,
            default=dict,
            help_text="resubmit/edit: title, description, payload; complete/hand_back: stage, outputs, target.",
        )
        return fields


class SimulateSerializer(serializers.Serializer[Any]):
    payload = serializers.DictField(default=dict)


class ReassignSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=5000)
    to_user = UsernameField(required=False, allow_null=True, default=None)
    to_group = serializers.SlugRelatedField(
        slug_field="name", queryset=Group.objects.all(), required=False, allow_null=True, default=None
    )


# --- answers (documentation of the shapes the views build) ------------------------------------


class PersonSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()


class ActionOptionSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    available = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["label"] = serializers.CharField()  # 'label' is a Field attribute of its own
        return fields


class RequestSummarySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    type = serializers.CharField()
    title = serializers.CharField()
    state = serializers.CharField()
    version = serializers.IntegerField()
    requester = PersonSerializer()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class RequestSerializer(RequestSummarySerializer):
    description = serializers.CharField()
    payload = serializers.DictField()
    payload_digest = serializers.CharField()
    revision = serializers.IntegerField()
    state_label = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    on_expiry = serializers.CharField()
    escalate_to = serializers.DictField(allow_null=True)
    holders = serializers.ListField(child=serializers.DictField())
    decisions = serializers.ListField(child=serializers.DictField())
    revisions = serializers.ListField(child=serializers.DictField())
    history = serializers.ListField(child=serializers.DictField())
    actions = ActionOptionSerializer(many=True)
    why_not = serializers.DictField(allow_null=True)


class RequestTypeSerializer(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    payload_schema = serializers.DictField()
    may_submit = serializers.BooleanField()
