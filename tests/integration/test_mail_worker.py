"""Mail exactly once, as a receiver counts it: a real Celery worker on Redis sends a
notification's mail to a real local SMTP server (bench.receivers); killed with SIGKILL
after the server took the mail but before it was marked sent, the mail is sent again by
the next worker after redelivery, under the same Message-ID, and marked sent once."""

from __future__ import annotations

import os
import signal

import pytest

from approvals.models import OutgoingMail
from bench.receivers import SmtpReceiver
from tests.factories import make_request
from tests.integration.conftest import CELERY_WORKER, Service, Services, subprocess_env, wait_until
from workflows.outbox import outbox_relay_drain

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _worker(services: Services, name: str, *, smtp_port: int) -> Service:
    worker = services.start(
        name,
        CELERY_WORKER,
        env=subprocess_env(
            TEST_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp_port),
            EMAIL_TIMEOUT="5",
            # Redis hands an unacknowledged task to another worker after 3 s (checked every
            # second); an attempt owns a mail for 2 s.
            CELERY_VISIBILITY_TIMEOUT="3",
            CELERY_UNACKED_RESTORE_INTERVAL="1",
            MAIL_SEND_LEASE="2",
        ),
    )
    wait_until(lambda: " ready." in worker.log() or not worker.alive(), timeout=60, what=f"the worker {name}")
    assert worker.alive(), worker.log()
    return worker


def test_a_worker_killed_mid_send_leaves_the_mail_sent_once_after_redelivery(
    services: Services, requester, request_type, approver
) -> None:
    with SmtpReceiver() as receiver:
        # given a worker, and an SMTP server that takes mails but answers their end late
        first = _worker(services, "worker-1", smtp_port=receiver.port)
        receiver.hold()
        # when a request is submitted, its approver's mail reaches the server ...
        request = make_request(requester=requester, request_type=request_type)
        wait_until(lambda: len(receiver.received) == 1, timeout=60, what="the mail at the server")
        # ... and the worker is SIGKILLed before it heard the server's answer
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        receiver.release()
        (held,) = OutgoingMail.objects.filter(notification__request=request)
        assert (held.status, held.sent_at) == ("pending", None)

        # when another worker starts (the broker hands it the unacknowledged send again)
        second = _worker(services, "worker-2", smtp_port=receiver.port)

        def all_sent() -> bool:
            outbox_relay_drain()  # a send that came back inside the dead attempt's lease retries when it ends
            return not OutgoingMail.objects.exclude(status="sent").exists()

        wait_until(all_sent, timeout=90, what="every mail marked sent", interval=0.3)

    # then the server has the mail twice under one Message-ID: once for anyone who dedupes
    copies = receiver.copies()
    held.refresh_from_db()
    assert copies[held.message_id] == 2
    assert held.message_id == f"<n{held.notification_id}.u{approver.pk}@127.0.0.1>"
    assert held.status == "sent"
    # and every mail the database says was sent arrived, under its own Message-ID, none other
    sent = set(OutgoingMail.objects.filter(status="sent").values_list("message_id", flat=True))
    assert set(copies) == sent
    assert [r.recipients for r in receiver.received if r.message_id == held.message_id] == [
        (approver.email,)
    ] * 2
    assert second.alive(), second.log()
