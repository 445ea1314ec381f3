"""EventBridge Scheduler for the local stack: the schedules the service creates in the emulator, fired.

moto keeps schedules (create, list, get, delete) but never runs them. This thread does, for the template's
schedule groups, as Scheduler would: ``rate(n unit)`` every n from the schedule's creation, ``cron(...)``
on its times in its timezone (UTC here; croniter evaluates it after the AWS form is translated: the year
field is dropped, ``?`` becomes ``*``, and AWS's day-of-week numbers 1-7 = SUN-SAT become 0-6), ``at(...)``
once, then deleted when ``ActionAfterCompletion`` is DELETE. Target input gets Scheduler's context
attributes filled in. Only SQS targets are run (the service's schedules all target the definition run
queue); another target is logged and skipped.

Differences from AWS, stated: times missed while the stack was stopped are not fired late, except a one-time
``at()`` schedule that is still there (its run was never made), which fires at the next start; the flexible
time window is ignored (the service uses OFF); retries of a failed target are the queue's, not Scheduler's.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from geoexport_local.emulator import client

log = logging.getLogger("geoexport_local.schedules")

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_DOW = {str(n): str(n - 1) for n in range(1, 8)}


def cron_expression(expression: str) -> str:
    """AWS ``cron(min hour dom month dow year)`` -> a five-field croniter expression."""
    minute, hour, dom, month, dow, _year = expression[5:-1].split(" ")
    dom = "*" if dom == "?" else dom
    if dow == "?":
        dow = "*"
    else:
        dow = re.sub(r"(?<![A-Za-z#])[1-7](?![0-9])", lambda m: _DOW[m.group(0)], dow)
    return f"{minute} {hour} {dom} {month} {dow}"


def next_time(expression: str, created: datetime, after: datetime) -> datetime | None:
    """The first time the schedule fires strictly after ``after`` (None: never again)."""
    if expression.startswith("at("):
        at = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)
        return at if at > after else None
    match = _RATE.match(expression)
    if match:
        period = int(match.group(1)) * _UNIT[match.group(2)]
        elapsed = (after - created).total_seconds()
        steps = max(1, int(elapsed // period) + 1)
        return created + timedelta(seconds=steps * period)
    if expression.startswith("cron("):
        result: datetime = croniter(cron_expression(expression), after).get_next(datetime)
        return result.astimezone(UTC)
    log.warning("schedule expression %r is not one the local Scheduler runs", expression)
    return None


def fill(text: str, arn: str, scheduled: datetime) -> str:
    """Scheduler's context attributes in a target's input."""
    return (
        text.replace("<aws.scheduler.schedule-arn>", arn)
        .replace("<aws.scheduler.scheduled-time>", scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
        .replace("<aws.scheduler.attempt-number>", "1")
    )


class LocalScheduler:
    """Polls the emulator's schedules once a second and fires those that are due."""

    def __init__(self, groups: list[str], endpoint: str, region: str) -> None:
        self._groups = groups
        self._scheduler = client("scheduler", endpoint, region)
        self._sqs = client("sqs", endpoint, region)
        self._started = datetime.now(UTC)
        self._next: dict[str, datetime | None] = {}  # schedule ARN + modification -> next firing

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            try:
                self.tick(datetime.now(UTC))
            except Exception as error:  # the emulator is stopping, or a schedule vanished meanwhile
                log.debug("scheduler tick failed: %s", error)

    def tick(self, now: datetime) -> int:
        fired = 0
        for group in self._groups:
            paginator = self._scheduler.get_paginator("list_schedules")
            for page in paginator.paginate(GroupName=group):
                for summary in page["Schedules"]:
                    if summary.get("State") == "DISABLED":
                        continue
                    schedule = self._scheduler.get_schedule(Name=summary["Name"], GroupName=group)
                    fired += self._due(schedule, now)
        return fired

    def _due(self, schedule: dict[str, Any], now: datetime) -> int:
        expression = str(schedule["ScheduleExpression"])
        created = schedule["CreationDate"].astimezone(UTC)
        key = f"{schedule['Arn']}@{schedule.get('LastModificationDate', created)}"
        if key not in self._next:
            start = max(created, self._started)
            if expression.startswith("at("):  # a one-time schedule still here has not run yet
                start = datetime.min.replace(tzinfo=UTC)
            self._next[key] = next_time(expression, created, start)
        due = self._next[key]
        if due is None or due > now:
            return 0
        self._fire(schedule, due)
        self._next[key] = next_time(expression, created, due)
        if expression.startswith("at(") and schedule.get("ActionAfterCompletion") == "DELETE":
            try:
                self._scheduler.delete_schedule(Name=schedule["Name"], GroupName=schedule["GroupName"])
            except self._scheduler.exceptions.ResourceNotFoundException:
                pass  # the target deleted it first (the service does when it starts the run)
        return 1

    def _fire(self, schedule: dict[str, Any], due: datetime) -> None:
        target = schedule["Target"]
        body = fill(str(target.get("Input", "{}")), str(schedule["Arn"]), due)
        arn = str(target["Arn"])
        log.info("schedule %s fires for %s", schedule["Name"], due.isoformat())
        if arn.startswith("arn:aws:sqs:"):
            url = self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
            self._sqs.send_message(QueueUrl=url, MessageBody=body)
        else:
            log.warning("schedule %s: target %s is not one the local Scheduler runs", schedule["Name"], arn)


def start(groups: list[str], endpoint: str, region: str, stop: threading.Event) -> None:
    if not groups:
        return
    scheduler = LocalScheduler(groups, endpoint, region)
    threading.Thread(target=scheduler.run, args=(stop,), name="scheduler", daemon=True).start()
