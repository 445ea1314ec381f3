"""At-least-once webhook delivery: a first attempt at once, then jittered exponential backoff via a queue.

Why a queue and not sleeps: a Lambda cannot wait 24 hours, and a failing receiver must not hold the
pipeline. Each failed delivery becomes a :class:`DeliveryJob` on the retry queue, due after
``policy.delay(attempts)``; the retry function sends it when due and either records it delivered, queues
the next attempt, or, once the retry window (24 h and more on AWS) is spent, records it exhausted and
puts it on the dead-letter queue. ``POST /export-tasks/{id}/callbacks:replay`` queues exhausted ones
again. Every attempt of one event carries the same ``webhook-id``, so receivers can drop repeats.

Before the first attempts, a safety-net job per hook is queued (due after the Notify step's timeout): if
the function dies between claiming the event and recording the attempts, that job delivers the event;
otherwise it finds a newer recorded attempt and is dropped. Jobs are matched to the latest recorded
outcome by their attempt count, so a superseded job never sends twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from geoexport.models.tasks import (
    DeliveryOutcome,
    ExportTask,
    TaskRecord,
    WebhookDelivery,
    WebhookEvent,
)
from geoexport.notify.callback import callback_body, v1_body
from geoexport.notify.webhooks import WebhookSender

#: Events whose delivery is retried; progress reports are best effort (a late one is worthless).
RETRIED = frozenset({WebhookEvent.TASK_COMPLETED, WebhookEvent.TASK_FAILED, WebhookEvent.TASK_EXPIRED})


class RetryPolicy(BaseModel):
    """Exponential backoff with equal jitter, capped per wait, for at least ``window_seconds`` in all."""

    model_config = ConfigDict(frozen=True)
    base_seconds: float = Field(30.0, gt=0)
    max_delay_seconds: float = Field(3600.0, gt=0)
    window_seconds: float = Field(25 * 3600.0, gt=0)
    safety_net_seconds: float = Field(180.0, ge=0)  # longer than the Notify step may run

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Wait before attempt ``attempts + 1``: half the capped exponential, plus up to half more."""
        ceiling = float(min(self.max_delay_seconds, self.base_seconds * 2.0 ** max(0, attempts - 1)))
        return ceiling / 2 + rand() * ceiling / 2


class DeliveryJob(BaseModel):
    """One pending delivery of one event to one webhook (the retry queue's message body)."""

    model_config = ConfigDict(extra="forbid")
    taskId: UUID
    url: str
    event: WebhookEvent
    attempts: int = Field(ge=0)  # attempts made so far (since the first, or since a replay)
    firstAttemptAt: datetime
    dueAt: datetime


class DeliveryQueue(Protocol):
    def schedule(self, job: DeliveryJob) -> None: ...
    def dead_letter(self, body: str, reason: str) -> None: ...


class Tasks(Protocol):
    def find(self, task_id: UUID | str) -> TaskRecord | None: ...


class Records(Protocol):
    """Where each hook's latest outcome is kept (:class:`geoexport.notify.records.DeliveryRecords`)."""

    def record(self, task_id: UUID | str, deliveries: list[WebhookDelivery]) -> None: ...
    def latest(self, task_id: UUID | str) -> list[WebhookDelivery]: ...


class Views(Protocol):
    def view(self, task: TaskRecord, with_deliveries: bool = True) -> ExportTask: ...
    def webhook_secret(self, owner: str) -> str | None: ...


def message_id(task_id: UUID | str, event: WebhookEvent) -> str:
    """Stable per task and event: every attempt and replay of one event is the same message."""
    return f"msg_{task_id}_{event.value}"


class Deliveries:
    def __init__(
        self,
        tasks: Tasks,
        records: Records,
        views: Views,
        sender: WebhookSender,
        queue: DeliveryQueue,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
        rand: Callable[[], float] = random.random,
        parallel: int = 16,
    ) -> None:
        self._tasks = tasks
        self._records = records
        self._views = views
        self._sender = sender
        self._queue = queue
        self._policy = policy
        self._clock = clock
        self._rand = rand
        self._parallel = parallel

    # -- sending ----------------------------------------------------------------------------------------
    def _body(self, task: TaskRecord, event: WebhookEvent) -> dict[str, Any]:
        view = self._views.view(task, with_deliveries=False)  # fresh download links on every attempt
        return v1_body(view) if task.api == "v1" else callback_body(view, event.value)

    def _send(self, task: TaskRecord, event: WebhookEvent, urls: list[str]) -> list[WebhookDelivery]:
        body = self._body(task, event)
        secret = self._views.webhook_secret(task.owner)  # signed with the owning client's secret
        mid = message_id(task.id, event)

        def one(url: str) -> WebhookDelivery:
            return self._sender.send(url, event, body, message_id=mid, secret=secret)

        if len(urls) <= 1:
            return [one(url) for url in urls]
        with ThreadPoolExecutor(min(self._parallel, len(urls))) as pool:
            return list(pool.map(one, urls))

    def _settle(
        self, task: TaskRecord, delivery: WebhookDelivery, attempts: int, first: datetime
    ) -> tuple[WebhookDelivery, DeliveryJob | None]:
        """One attempt's result as it is recorded, and the next attempt's job (queued once recorded: a
        job checks the recorded outcome before it sends)."""
        delivery = delivery.model_copy(update={"attempts": attempts})
        if delivery.outcome is not DeliveryOutcome.RETRYING or delivery.event not in RETRIED:
            return delivery, None
        now = self._clock()
        deadline = first + timedelta(seconds=self._policy.window_seconds)
        job = DeliveryJob(
            taskId=task.id,
            url=delivery.url,
            event=delivery.event,
            attempts=attempts,
            firstAttemptAt=first,
            dueAt=now,
        )
        if now >= deadline:
            reason = f"no 2xx answer after {attempts} attempts over {self._policy.window_seconds:.0f} s"
            self._queue.dead_letter(job.model_dump_json(), f"{reason}; last: {delivery.error}")
            return delivery.model_copy(update={"outcome": DeliveryOutcome.EXHAUSTED}), None
        due = min(now + timedelta(seconds=self._policy.delay(attempts, self._rand)), deadline)
        return delivery.model_copy(update={"nextAttemptAt": due}), job.model_copy(update={"dueAt": due})

    def _record(self, task: TaskRecord, settled: list[tuple[WebhookDelivery, DeliveryJob | None]]) -> None:
        self._records.record(task.id, [delivery for delivery, _ in settled])
        for _, job in settled:
            if job is not None:
                self._queue.schedule(job)

    def _latest(self, task_id: UUID | str) -> dict[tuple[str, WebhookEvent], WebhookDelivery]:
        """The latest recorded outcome per (url, event): what queued jobs are checked against."""
        return {(d.url, d.event): d for d in self._records.latest(task_id)}

    def dead_letter(self, body: str, reason: str) -> None:
        self._queue.dead_letter(body, reason)

    # -- the three ways in ------------------------------------------------------------------------------
    def first(self, task: TaskRecord, event: WebhookEvent) -> list[WebhookDelivery]:
        """The first attempt for every hook of ``event``; failures are queued for retry."""
        urls = [str(hook.url) for hook in task.all_webhooks() if event in hook.events]
        if not urls:
            return []
        now = self._clock()
        if event in RETRIED:
            for url in urls:  # the safety net: delivers if this function dies before recording
                due = now + timedelta(seconds=self._policy.safety_net_seconds)
                self._queue.schedule(
                    DeliveryJob(
                        taskId=task.id, url=url, event=event, attempts=0, firstAttemptAt=now, dueAt=due
                    )
                )
        settled = [self._settle(task, d, 1, now) for d in self._send(task, event, urls)]
        self._record(task, settled)
        return [delivery for delivery, _ in settled]

    def retry(self, job: DeliveryJob) -> WebhookDelivery | None:
        """Run a queued job when due; None when it was not due yet (requeued) or is superseded."""
        now = self._clock()
        if job.dueAt > now + timedelta(seconds=1):
            self._queue.schedule(job)  # longer than one queue delay allows: another hop
            return None
        task = self._tasks.find(job.taskId)
        if task is None:
            return None  # the task is gone; nobody is waiting for its callback
        recorded = self._latest(task.id).get((job.url, job.event))
        if recorded is not None and (
            recorded.attempts > job.attempts or recorded.outcome is not DeliveryOutcome.RETRYING
        ):
            return None  # superseded: a newer attempt (or the final outcome) is already recorded
        attempts = job.attempts + 1
        (result,) = self._send(task, job.event, [job.url])
        settled = self._settle(task, result, attempts, job.firstAttemptAt)
        self._record(task, [settled])
        return settled[0]

    def replay(self, task: TaskRecord) -> list[WebhookDelivery]:
        """Queue again every delivery whose latest outcome is exhausted; answers what was queued.

        The replay is recorded before its jobs are queued: a job checks the recorded outcome first, and
        one that ran before the record existed would find ``exhausted`` and drop itself.
        """
        now = self._clock()
        queued = [
            WebhookDelivery(
                url=url,
                event=event,
                deliveredAt=now,
                outcome=DeliveryOutcome.RETRYING,
                attempts=0,
                nextAttemptAt=now,
                statusCode=None,
                error="replay requested",
            )
            for (url, event), delivery in self._latest(task.id).items()
            if delivery.outcome is DeliveryOutcome.EXHAUSTED
        ]
        if not queued:
            return []
        self._records.record(task.id, queued)
        for delivery in queued:
            self._queue.schedule(
                DeliveryJob(
                    taskId=task.id,
                    url=delivery.url,
                    event=delivery.event,
                    attempts=0,
                    firstAttemptAt=now,
                    dueAt=now,
                )
            )
        return queued
