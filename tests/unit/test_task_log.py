"""Issue 15: the task log's entries (one module, its store faked in memory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from geoexport.models.tasks import DeliveryOutcome, WebhookDelivery, WebhookEvent
from geoexport.tasks.log import LogEntry, LogType, StepLog, step_key, task_log


class Memory:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], LogEntry] = {}

    def add(self, task_id: UUID | str, entry: LogEntry, key: str) -> None:
        self.items[(str(task_id), key)] = entry

    def entries(self, task_id: UUID | str) -> list[LogEntry]:
        return [entry for (task, _), entry in self.items.items() if task == str(task_id)]

    def runs(self, task_id: UUID | str, step: str) -> tuple[int, bool]:
        started = sum(
            1
            for (task, key) in self.items
            if task == str(task_id) and key.startswith(f"step#{step}#") and key.endswith("#start")
        )
        end = self.items.get((str(task_id), step_key(step, started, "end")))
        return started, end is not None and end.type is LogType.STEP_FINISH


def test_a_step_that_fails_then_runs_again_is_logged_as_a_retry() -> None:
    store, ticks = (
        Memory(),
        iter(datetime(2026, 11, 28, tzinfo=UTC) + timedelta(seconds=s) for s in range(10)),
    )
    steps = StepLog(store, clock=lambda: next(ticks))
    with pytest.raises(RuntimeError), steps.run("t1", "Clip"):
        raise RuntimeError("the source went away")
    with steps.run("t1", "Clip"):
        pass
    with steps.run("t1", "Package"):
        pass
    got = [(e.step, e.type, e.attempt) for e in sorted(store.entries("t1"), key=lambda e: e.time)]
    assert got == [
        ("Clip", LogType.STEP_START, 1),
        ("Clip", LogType.STEP_FAILED, 1),
        ("Clip", LogType.STEP_RETRY, 2),
        ("Clip", LogType.STEP_FINISH, 2),
        ("Package", LogType.STEP_START, 1),
        ("Package", LogType.STEP_FINISH, 1),
    ]
    failed = store.items[("t1", step_key("Clip", 1, "end"))]
    assert "RuntimeError: the source went away" in failed.message and failed.durationSeconds is not None


def test_a_step_called_again_after_it_finished_continues() -> None:
    """The workflow calling a finished step again (a VECTOR selection's Clip loop) is no retry; a run
    after that one failed is."""
    store, ticks = (
        Memory(),
        iter(datetime(2026, 11, 29, tzinfo=UTC) + timedelta(seconds=s) for s in range(10)),
    )
    steps = StepLog(store, clock=lambda: next(ticks))
    with steps.run("t2", "Clip"):
        pass
    with pytest.raises(RuntimeError), steps.run("t2", "Clip"):
        raise RuntimeError("throttled")
    with steps.run("t2", "Clip"):
        pass
    starts = [(e.type, e.message) for e in sorted(store.entries("t2"), key=lambda e: e.time)][::2]
    assert starts == [
        (LogType.STEP_START, "Clip started"),
        (LogType.STEP_START, "Clip continued (call 2)"),
        (LogType.STEP_RETRY, "Clip started again (run 3)"),
    ]


def test_the_log_merges_webhook_outcomes_oldest_first() -> None:
    at = datetime(2026, 11, 28, tzinfo=UTC)
    entries = [
        LogEntry(time=at + timedelta(seconds=5), type=LogType.EXPORT_FINISH, message="export finished")
    ]
    delivery = WebhookDelivery(
        url="https://example.org/h",
        event=WebhookEvent.TASK_COMPLETED,
        statusCode=500,
        deliveredAt=at + timedelta(seconds=6),
        outcome=DeliveryOutcome.RETRYING,
        attempts=2,
    )
    log = task_log(uuid4(), entries, [delivery])
    assert [e.type for e in log.entries] == [LogType.EXPORT_FINISH, LogType.WEBHOOK]
    assert "HTTP 500" in log.entries[1].message and "after 2 attempts" in log.entries[1].message
