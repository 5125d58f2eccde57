"""Time-driven work: reminders and escalations of overdue handoffs, found by a scan of
the database that beat runs (no broker holds a timer).

    scan.py        timers_scan() (beat), handoff_timers_scan() in batches, handoff_timer_fire() by id
    escalation.py  what one due timer does: a reminder, or the stage's overdue action
    notices.py     the notifications and mail the timers send
"""

from approvals.timers.scan import (
    TIMER_SCANS,
    ScanReport,
    handoff_timer_fire,
    handoff_timers_scan,
    timers_scan,
)

__all__ = ["TIMER_SCANS", "ScanReport", "handoff_timer_fire", "handoff_timers_scan", "timers_scan"]
