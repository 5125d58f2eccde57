"""Which live streams a user may hear, and telling open sockets when that changes.

A user hears their own stream, their groups' streams, and, while a delegation to them is
active, their delegators' own and group streams (they see those items in their inbox).
A change of any of these (a group joined or left, a delegation created, ended or
revoked, the user deactivated, a session ended or logged out) sends a control message
to the user's open sockets after commit, and each re-checks at once; time-based edges
(a delegation starting or ending on its own) are re-checked when they fall due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, user_logged_out
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import Delegation, User
from accounts.sessions import sessions_ended
from workflows.delivery import channel_send_now
from workflows.live import RECHECK_MESSAGE_TYPE, control_group
from workflows.models import Recipient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reach:
    """What one delegation lets its delegate hear of a stream they hear only through it:
    events of items its scope covers (`keys` None: every item, like Delegation.covers),
    never those of the delegator's own items (nobody acts for them on those), nor events
    about no item at all (`ref` missing: e.g. the delegator's other delegations starting)."""

    delegator_id: int
    keys: frozenset[str] | None

    def allows(self, event: dict[str, Any]) -> bool:
        if not event.get("ref"):
            return False
        owner = event.get("owner")
        if owner is not None and str(owner) == str(self.delegator_id):
            return False
        if self.keys is None:
            return True
        scope = event.get("scope")
        return isinstance(scope, str) and scope in self.keys


def event_allowed(reaches: tuple[Reach, ...] | None, event: dict[str, Any]) -> bool:
    """Whether a socket may be told of `event` on a stream: always on a stream of its own
    (`reaches` None), else when one of the delegations it hears the stream through reaches it."""
    return reaches is None or any(r.allows(event) for r in reaches)


@dataclass(frozen=True)
class Subscription:
    """The streams a socket may hear now, and when that may change by itself.

    `reaches` holds, per stream heard only through delegations, what they let through;
    a stream not in it is the user's own (or their group's) and relays everything."""

    streams: list[str]
    next_edge: datetime | None = None
    reaches: dict[str, tuple[Reach, ...]] = field(default_factory=dict)


def delegation_next_edge(*, user_id: int, now: datetime) -> datetime | None:
    """The next moment a delegation to `user_id` starts or ends on its own, if any."""
    moments: list[datetime] = []
    for starts_at, ends_at in (
        Delegation.objects.open(now).filter(delegate_id=user_id).values_list("starts_at", "ends_at")
    ):
        moments += [m for m in (starts_at, ends_at) if m is not None and m > now]
    return min(moments, default=None)


def inbox_subscription(user: User) -> Subscription:
    """The streams of everything that changes `user`'s inbox: theirs, their groups', and
    those of the people they stand in for now (active delegations from active people),
    the latter limited to what each delegation reaches (`Subscription.reaches`)."""
    now = timezone.now()
    delegations = list(
        Delegation.objects.active(now)
        .filter(delegate=user, delegator__is_active=True)
        .values_list("delegator_id", "scope")
    )
    people = {user.pk} | {d for d, _ in delegations}
    memberships = list(Group.objects.filter(user__in=people).values_list("user", "pk"))
    groups_of: dict[int, set[int]] = {}
    for person, group_id in memberships:
        groups_of.setdefault(person, set()).add(group_id)
    own = {Recipient(user_id=user.pk).channel_group} | {
        Recipient(group_id=g).channel_group for g in groups_of.get(user.pk, set())
    }
    reaches: dict[str, tuple[Reach, ...]] = {}
    for delegator_id, scope in delegations:
        reach = Reach(delegator_id=delegator_id, keys=frozenset(scope) if scope else None)
        heard = [Recipient(user_id=delegator_id)]
        heard += [Recipient(group_id=g) for g in sorted(groups_of.get(delegator_id, set()))]
        for stream in (r.channel_group for r in heard):
            if stream not in own:
                reaches[stream] = (*reaches.get(stream, ()), reach)
    group_ids = {g for _, g in memberships}
    recipients = [Recipient(user_id=p) for p in sorted(people)]
    recipients += [Recipient(group_id=g) for g in sorted(group_ids)]
    return Subscription(
        streams=[r.channel_group for r in recipients],
        next_edge=delegation_next_edge(user_id=user.pk, now=now),
        reaches=reaches,
    )


@dataclass(frozen=True)
class SignedIn:
    """What an open socket keeps of the session it was opened with (not the session)."""

    user_id: int
    session_key: str
    auth_hash: str

    @classmethod
    def of(cls, *, user_id: int, session: Any) -> SignedIn | None:
        key = getattr(session, "session_key", None)
        stored = session.get(HASH_SESSION_KEY) if session is not None else None
        if not key or not stored:
            return None
        return cls(user_id=user_id, session_key=key, auth_hash=stored)


def user_still_signed_in(signed_in: SignedIn) -> User | None:
    """The user behind an open socket, reloaded, while their session still stands: None
    when they were deactivated, logged out (the session is gone) or signed out
    everywhere (the session's hash no longer matches)."""
    user = User.objects.filter(pk=signed_in.user_id, is_active=True).first()
    if user is None:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not store().exists(signed_in.session_key):
        return None
    if not constant_time_compare(signed_in.auth_hash, user.get_session_auth_hash()):
        return None
    return user


def subscriptions_recheck(*, user_ids: set[int] | list[int]) -> None:
    """After commit, tell the open sockets of `user_ids` to re-check what they may hear.

    Side effect: one control message per user on the channel layer. A failure is logged,
    not raised: the sockets' periodic re-check covers it within LIVE_RECHECK_SECONDS.
    """
    groups = [control_group(pk) for pk in sorted(set(user_ids))]
    if not groups:
        return

    def send() -> None:
        try:
            channel_send_now(groups=groups, message={"type": RECHECK_MESSAGE_TYPE})
        except Exception:
            logger.warning("could not tell %s open sockets to re-check", len(groups), exc_info=True)

    transaction.on_commit(send, robust=True)


# --- what changes a subscription -----------------------------------------------------------

_USER_FIELDS_THAT_MATTER = frozenset({"is_active", "session_generation", "password"})


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="workflows.subscriptions.groups")
def _groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **_: Any
) -> None:
    if action == "pre_clear" and reverse:
        # group.user_set.clear(): who was in it is known only before.
        instance._live_cleared = set(instance.user_set.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        users = {instance.pk}
    elif action == "post_clear":
        users = set(getattr(instance, "_live_cleared", set()))
    else:
        users = set(pk_set or set())
    # Their delegates hear their groups' streams through them.
    subscriptions_recheck(user_ids=users | delegations_touching(users))


@receiver(post_save, sender=Delegation, dispatch_uid="workflows.subscriptions.delegation_saved")
@receiver(post_delete, sender=Delegation, dispatch_uid="workflows.subscriptions.delegation_deleted")
def _delegation_changed(sender: Any, instance: Delegation, **_: Any) -> None:
    subscriptions_recheck(user_ids=[instance.delegate_id])


@receiver(pre_save, sender=User, dispatch_uid="workflows.subscriptions.user_before")
def _user_before(sender: Any, instance: User, update_fields: Any = None, **_: Any) -> None:
    if instance.pk is None or (
        update_fields is not None and not _USER_FIELDS_THAT_MATTER & set(update_fields)
    ):
        return
    before = User.objects.filter(pk=instance.pk).values("is_active", "session_generation", "password").first()
    changed = before is not None and (
        before["is_active"] != instance.is_active
        or before["session_generation"] != instance.session_generation
        or before["password"] != instance.password
    )
    setattr(instance, "_live_changed", changed)  # noqa: B010  (read by _user_saved only)


@receiver(post_save, sender=User, dispatch_uid="workflows.subscriptions.user_saved")
def _user_saved(sender: Any, instance: User, **_: Any) -> None:
    if getattr(instance, "_live_changed", False):
        setattr(instance, "_live_changed", False)  # noqa: B010  (one re-check per change)
        # Their delegates heard their streams through them.
        subscriptions_recheck(user_ids={instance.pk} | delegations_touching({instance.pk}))


@receiver(user_logged_out, dispatch_uid="workflows.subscriptions.logged_out")
def _logged_out(sender: Any, user: User | None = None, **_: Any) -> None:
    if user is not None and user.pk is not None:
        subscriptions_recheck(user_ids=[user.pk])


@receiver(sessions_ended, dispatch_uid="workflows.subscriptions.sessions_ended")
def _sessions_ended(sender: Any, user: User, **_: Any) -> None:
    subscriptions_recheck(user_ids=[user.pk])


def delegations_touching(user_ids: set[int]) -> set[int]:
    """The delegates of open delegations from `user_ids` (whose streams they hear)."""
    if not user_ids:
        return set()
    return set(
        Delegation.objects.open().filter(Q(delegator_id__in=user_ids)).values_list("delegate_id", flat=True)
    )
