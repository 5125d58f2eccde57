"""People: users, teams with managers, delegations (out of office)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac


class User(AbstractUser):
    """A person. `manager` is the direct line manager, used by approval routing."""

    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    # Part of every session's proof of login: raising it ends all of this person's
    # sessions at their next request, on any session backend ("log out everywhere").
    session_generation = models.PositiveIntegerField(default=0, editable=False)
    # A machine, not a person: it has no password login and acts only through API tokens
    # an administrator issues; its groups are its roles (accounts.tokens).
    is_service_account = models.BooleanField(
        default=False, help_text="A machine client: no password login; it uses API tokens only."
    )
    # Where the person works, for times shown in mail and the daily digest's morning;
    # empty: the site's TIME_ZONE.
    time_zone = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    # Django (and Channels, for WebSockets) keep this hash in the session at login and
    # compare it on every request; a session whose hash no longer matches is flushed.
    # Django's hash covers the password; this one covers the session generation too.
    # Generation 0 keeps Django's own value, so sessions made before stay valid.

    def get_session_auth_hash(self) -> str:
        if not self.session_generation:
            return super().get_session_auth_hash()
        return self._generation_hash(settings.SECRET_KEY)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        if not self.session_generation:
            yield from super().get_session_auth_fallback_hash()
            return
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._generation_hash(secret)

    def _generation_hash(self, secret: str | bytes) -> str:
        return salted_hmac(
            "accounts.User.session_generation",
            f"{self.password}\x00{self.session_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    @property
    def display_name(self) -> str:
        return str(self)

    @property
    def zone(self) -> ZoneInfo:
        """The person's time zone (the site's when unset or unknown)."""
        try:
            return ZoneInfo(self.time_zone or settings.TIME_ZONE)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(settings.TIME_ZONE)


class Team(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    members = models.ManyToManyField(User, through="TeamMembership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="team_memberships")
    is_manager = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_membership_unique")]

    def __str__(self) -> str:
        role = "manager" if self.is_manager else "member"
        return f"{self.user} ({role} of {self.team})"


class DelegationQuerySet(models.QuerySet["Delegation"]):
    def active(self, at: object | None = None) -> DelegationQuerySet:
        moment = at or timezone.now()
        return self.filter(
            Q(starts_at__lte=moment),
            Q(ends_at__isnull=True) | Q(ends_at__gt=moment),
            revoked_at__isnull=True,
        )

    def open(self, at: object | None = None) -> DelegationQuerySet:
        """Not revoked and not over yet: the active ones and those still to start."""
        moment = at or timezone.now()
        return self.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=moment), revoked_at__isnull=True)


class Delegation(models.Model):
    """While active, `delegate` may act on behalf of `delegator` (out of office), on the
    items its `scope` covers.

    Actions taken under a delegation record both people in the audit trail. A delegation
    never chains (only a delegator's own delegations to someone count for them) and never
    lets the delegate act for the delegator on the delegator's own items; the engine
    enforces both (workflows.permissions, workflows.services.common.principal_of).
    """

    delegator = models.ForeignKey(User, on_delete=models.CASCADE, related_name="delegations_given")
    delegate = models.ForeignKey(User, on_delete=models.CASCADE, related_name="delegations_received")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    # The scope keys of the items it covers (for approval requests: request type slugs,
    # as a workflow's `delegation_scope` names them); empty: every item.
    scope = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Who set it up and who ended it: the delegator, their manager, or an administrator.
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="delegations_created"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="delegations_revoked"
    )
    # When the timers scan told both people's inboxes that it began / ended (so each edge
    # is announced once, whenever the scan runs after it).
    start_announced_at = models.DateTimeField(null=True, blank=True, editable=False)
    end_announced_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = DelegationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["delegate", "delegator"], name="delegation_lookup")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(delegator=models.F("delegate")), name="delegation_not_to_self"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="delegation_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} → {self.delegate}"

    def covers(self, scope: str | None) -> bool:
        """Whether it reaches an item of scope key `scope`. An item without a key (None)
        is reached only by a delegation of everything."""
        if not self.scope:
            return True
        return scope is not None and scope in self.scope

    def is_active(self, at: datetime | None = None) -> bool:
        moment = at or timezone.now()
        return (
            self.revoked_at is None
            and self.starts_at <= moment
            and (self.ends_at is None or self.ends_at > moment)
        )

    def ended_at(self, at: datetime | None = None) -> datetime | None:
        """When it stopped counting (revoked, or its end passed), or None while it has not."""
        moment = at or timezone.now()
        if self.revoked_at is not None:
            return self.revoked_at
        if self.ends_at is not None and self.ends_at <= moment:
            return self.ends_at
        return None


class ApiToken(models.Model):
    """A personal (or service account's) API token. Only a SHA-256 digest of its secret is
    kept: the secret is shown once, when it is made (accounts.tokens.api_token_create).
    `prefix` is the public part the client sends in front of the secret, to find the row."""

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="api_token_by_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, at: datetime | None = None) -> bool:
        moment = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)


def _default_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]  # Monday to Friday (date.weekday())


class WorkingCalendar(models.Model):
    """When work counts towards an SLA measured in working hours: the weekdays, the hours
    of a working day and the holidays, in one time zone.

    The calendar without a team is the organisation's default; a team's own calendar
    overrides it for the work its members hold (accounts.calendars.calendar_for).
    """

    name = models.CharField(max_length=120)
    team = models.OneToOneField(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="working_calendar"
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    # Days of the week that are working days: 0 is Monday, 6 is Sunday.
    weekdays = models.JSONField(default=_default_weekdays)
    day_starts = models.TimeField(default=time(9, 0))
    day_ends = models.TimeField(default=time(17, 0))

    class Meta:
        ordering = ["team_id", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(day_ends__gt=models.F("day_starts")), name="calendar_day_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problems: dict[str, list[str]] = {}
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems["time_zone"] = [f"'{self.time_zone}' is not a known time zone (e.g. Europe/Berlin)."]
        days = self.weekdays
        if (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, int) and 0 <= d <= 6 for d in days)
        ):
            problems["weekdays"] = ["List at least one working day, as numbers 0 (Monday) to 6 (Sunday)."]
        if self.day_starts is not None and self.day_ends is not None and self.day_ends <= self.day_starts:
            problems["day_ends"] = ["A working day must end after it starts."]
        if problems:
            raise ValidationError(problems)


class Holiday(models.Model):
    """A day off in one calendar's time zone: no working hours on it."""

    calendar = models.ForeignKey(WorkingCalendar, on_delete=models.CASCADE, related_name="holidays")
    day = models.DateField()
    name = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["calendar", "day"], name="holiday_once_per_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.name}".strip()
