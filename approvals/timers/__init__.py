"""Time-driven work: reminders and escalations of overdue handoffs, found by a scan of
the database that beat runs (no broker holds a timer).

    scan.py        timers_scan() (beat), handoff_timers_scan() in batches, handoff_timer_fire() by id
    escalation.py  what one due timer does: a reminder, or the stage's overdue action
    expiry.py      requests_expire(): open requests past expires_at expire or escalate, once
    snooze.py      snoozes_wake(): snoozed items come back at their follow-up time
    delegation_edges.py  delegation_edges_announce(): live updates as delegations start and end
    notices.py     the notifications and mail the timers send
"""

from approvals.timers.delegation_edges import delegation_edges_announce
from approvals.timers.expiry import requests_expire
from approvals.timers.report import ScanReport
from approvals.timers.scan import (
    TIMER_SCANS,
    handoff_timer_fire,
    handoff_timers_scan,
    timers_scan,
)
from approvals.timers.snooze import snoozes_wake

__all__ = [
    "TIMER_SCANS",
    "ScanReport",
    "delegation_edges_announce",
    "handoff_timer_fire",
    "handoff_timers_scan",
    "requests_expire",
    "snoozes_wake",
    "timers_scan",
]
