"""Webhook delivery bookkeeping with jobs consumed the instant they are queued (the worst-case race)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.models.tasks import DeliveryOutcome, WebhookDelivery, WebhookEvent
from geoexport.notify.delivery import Deliveries, DeliveryJob, RetryPolicy

URL = "https://receiver.example/hook"


class Tasks:
    def __init__(self, task: TaskRecord) -> None:
        self.task = task

    def find(self, task_id: Any) -> TaskRecord:
        return self.task


class Records:
    """Every recorded attempt in order (the table keeps only the latest per hook; history shows waits)."""

    def __init__(self) -> None:
        self.history: list[WebhookDelivery] = []

    def record(self, task_id: Any, deliveries: list[WebhookDelivery]) -> None:
        self.history += deliveries

    def latest(self, task_id: Any) -> list[WebhookDelivery]:
        return list({(d.url, d.event): d for d in self.history}.values())


class Views:
    def view(self, task: TaskRecord, with_deliveries: bool = True) -> Any:
        from geoexport.models.tasks import ExportTask

        return ExportTask(
            id=task.id, status=task.status, progress=task.progress,
            catalogRecordID=task.request.catalogRecordID, domain=task.request.domain, ROI={},
            artifactCRS="4326", description="", keywords={}, parameters={}, webhooks=[],
            createdAt=task.createdAt,
        )  # fmt: skip

    def webhook_secret(self, owner: str) -> str | None:
        return None


class Sender:
    """Answers from a script: each call pops the next status (None: no answer)."""

    def __init__(self, statuses: list[int | None]) -> None:
        self.statuses = statuses
        self.calls = 0

    def send(self, url: str, event: WebhookEvent, body: Any, message_id: str = "", secret: Any = None) -> Any:
        self.calls += 1
        status = self.statuses.pop(0)
        ok = status is not None and 200 <= status < 300
        return WebhookDelivery(
            url=url, event=event, statusCode=status, deliveredAt=datetime.now(UTC),
            outcome=DeliveryOutcome.DELIVERED if ok else DeliveryOutcome.RETRYING,
        )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class EagerQueue:
    """Runs each due job at once, inside schedule(): as if the consumer beat the caller to the record."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.deliveries: Deliveries | None = None
        self.dead: list[str] = []
        self.later: list[DeliveryJob] = []

    def schedule(self, job: DeliveryJob) -> None:
        if job.dueAt <= self.clock.now and self.deliveries is not None:
            self.deliveries.retry(job)
        else:
            self.later.append(job)

    def dead_letter(self, body: str, reason: str) -> None:
        self.dead.append(reason)

    def run_due(self) -> None:
        """Advance the clock to each queued job and run it (the retry queue over a day)."""
        while self.later:
            job = min(self.later, key=lambda j: j.dueAt)
            self.later.remove(job)
            self.clock.now = max(self.clock.now, job.dueAt)
            assert self.deliveries is not None
            self.deliveries.retry(job)


def setup(statuses: list[int | None]) -> tuple[Deliveries, Tasks, Records, Sender, EagerQueue, Clock]:
    request = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(uuid4()), "domain": "RASTER",
            "webhooks": [{"url": URL, "events": ["TASK_COMPLETED"]}],
        }
    )  # fmt: skip
    now = datetime(2026, 1, 1, tzinfo=UTC)
    task = TaskRecord(
        id=uuid4(), status=TaskStatus.COMPLETED, progress=100, request=request, createdAt=now, updatedAt=now
    )
    tasks, records, sender, clock = Tasks(task), Records(), Sender(statuses), Clock()
    queue = EagerQueue(clock)
    policy = RetryPolicy(
        base_seconds=30, max_delay_seconds=3600, window_seconds=25 * 3600, safety_net_seconds=180
    )
    deliveries = Deliveries(tasks, records, Views(), sender, queue, policy, clock, rand=lambda: 0.5)  # type: ignore[arg-type]
    queue.deliveries = deliveries
    return deliveries, tasks, records, sender, queue, clock


def test_a_day_of_failures_then_exhausted_then_replayed_once() -> None:
    deliveries, tasks, records, sender, queue, clock = setup([503] * 100)
    start = clock.now
    deliveries.first(tasks.task, WebhookEvent.TASK_COMPLETED)
    queue.run_due()
    (latest,) = records.latest(tasks.task.id)
    assert latest.outcome is DeliveryOutcome.EXHAUSTED and len(queue.dead) == 1
    assert clock.now - start >= timedelta(hours=25)  # retried for the whole window, no less
    waits = [b.deliveredAt for b in records.history]
    assert sender.calls == latest.attempts and 30 < sender.calls < 50  # backed off: ~40 attempts in 25 h
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))
    sender.statuses = [204]
    replayed = deliveries.replay(tasks.task)  # the job runs inside schedule(), before replay returns
    assert len(replayed) == 1
    (latest,) = records.latest(tasks.task.id)
    assert latest.outcome is DeliveryOutcome.DELIVERED and sender.statuses == []
    assert deliveries.replay(tasks.task) == []  # nothing exhausted any more


def test_superseded_and_duplicate_jobs_do_not_send_twice() -> None:
    deliveries, tasks, records, sender, queue, _ = setup([503, 204, 204])
    deliveries.first(tasks.task, WebhookEvent.TASK_COMPLETED)
    retry_job = next(j for j in queue.later if j.attempts == 1)
    queue.run_due()  # the retry delivers; the safety-net job (attempts 0) finds it superseded
    assert sender.calls == 2
    deliveries.retry(retry_job)  # SQS delivered the same message twice: dropped
    assert sender.calls == 2 and records.latest(tasks.task.id)[0].outcome is DeliveryOutcome.DELIVERED
