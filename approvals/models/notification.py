"""In-app notifications (also sent by mail)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    """A message to a person about a request: listed in the app (the bell), and mailed
    when they have an address.

    `event_id` is the outbox event that caused it: a task delivered twice sends once.
    `text` is the one line the bell lists ("approved at stage manager; now with finance").
    """

    class Kind(models.TextChoices):
        HANDOFF = "handoff", "New item for you"
        DECISION = "decision", "Decision"
        CHANGES = "changes", "Changes asked"
        REASSIGNED = "reassigned", "Reassigned"
        ESCALATION = "escalation", "Escalation"
        REMINDER = "reminder", "Reminder"
        FOLLOW_UP = "follow_up", "Follow-up"
        COMMENT = "comment", "Comment"
        CLOSED = "closed", "Closed"
        OTHER = "other", "Update"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    request = models.ForeignKey("ApprovalRequest", on_delete=models.CASCADE, related_name="notifications")
    event_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    text = models.CharField(max_length=300, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    # Mail: waiting for the recipient's daily digest (their preference for this kind),
    # and when it went out (single mail or digest), so a digest never repeats one.
    digest_pending = models.BooleanField(default=False)
    mailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event_id", "recipient"], name="notification_once_per_event")
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_by_recipient"),
            # The bell's count: unread ones only.
            models.Index(
                fields=["recipient"], condition=models.Q(read_at__isnull=True), name="notification_unread"
            ),
            # The daily digest: what still waits to be mailed, per person.
            models.Index(
                fields=["recipient", "id"],
                condition=models.Q(digest_pending=True),
                name="notification_digest",
            ),
        ]

    def __str__(self) -> str:
        return self.subject


class MailPreference(models.Model):
    """How a person wants mail of one kind of notification: each one at once, gathered
    in a daily digest, or none (the bell keeps them all). No row: at once."""

    class Delivery(models.TextChoices):
        IMMEDIATE = "immediate", "Each one at once"
        DIGEST = "digest", "In a daily digest"
        OFF = "off", "No mail"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_preferences"
    )
    kind = models.CharField(max_length=20, choices=Notification.Kind.choices)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.IMMEDIATE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="mail_preference_once_per_kind")]

    def __str__(self) -> str:
        return f"{self.user}: {self.kind} {self.delivery}"


class OutgoingMail(models.Model):
    """One mail to send: written in the transaction that decides it (a notification's
    single mail, or a daily digest), then sent by the Celery task `approvals.mail_send`,
    queued through the outbox in that same transaction (approvals.mail_sending).

    Sending is at least once: a worker that dies after the SMTP server took the mail but
    before it was marked sent sends it again. Its `message_id` (the `Message-ID` header)
    is fixed when the row is written, the same on every resend, so a receiver can drop the
    copy.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        DEAD = "dead", "Failed for good"

    message_id = models.CharField(max_length=200, unique=True)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    address = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    # The notification a single mail tells of (none for a digest): one mail each at most.
    notification = models.OneToOneField(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="mail"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # An attempt in flight: no other may start before `lease_until` (its token marks it).
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)

    class Meta:
        indexes = [
            # The resume sweep: pending mails whose task may have been lost.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="outgoing_mail_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} to {self.address} ({self.status})"


class ActionLinkUse(models.Model):
    """A mailed action link that was used: each link acts once (its `nonce` is unique).

    The link itself (approvals.action_links) is signed and carries who may use it, on
    which request, for which action, and when it was made; only its use is stored.
    """

    nonce = models.CharField(max_length=32, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    request = models.ForeignKey("ApprovalRequest", on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=30)
    used_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.action} link of {self.user} used {self.used_at:%Y-%m-%d %H:%M}"
