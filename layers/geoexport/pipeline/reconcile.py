"""The reconciler: every accepted export ends, whatever happened to its workflow.

Run on a schedule on AWS (template.yaml's ReconcileFunction) and once at every start of the local stack,
whose emulator loses running executions when it stops: one mechanism for both. For each task that is still
PENDING or IN_PROGRESS and has not changed for ``grace``:

- its execution is RUNNING: nothing to do;
- its execution stopped at the Paused state but the task was resumed meanwhile: continue it;
- it has no execution (never started, or lost with a restarted emulator): start the workflow again; the
  steps are idempotent, so a re-run resumes from what is stored. After ``max_resumes`` restarts it ends
  FAILED instead, so a task that keeps dying cannot loop;
- its execution ended (FAILED, TIMED_OUT, ABORTED, or SUCCEEDED without the task saying so, e.g. a Notify
  step that failed for good): it ends FAILED with a reason a user can act on.

Failing goes through :func:`geoexport.pipeline.notify.run`, as the state machine's MarkFailed does: the
reservation is released and files are deleted; the status change is announced like any other.

It also announces what a lost change never did: a task that ended within ``announce_window`` without its
final (or expired) callback claimed, e.g. because the stream record was lost with a restarted emulator or
the TaskChanges function failed for good, gets it now (claimed once: never a second one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from geoexport.errors import ServiceUnavailable
from geoexport.models.tasks import TaskRecord, TaskStatus
from geoexport.notify import changes
from geoexport.notify.delivery import Deliveries
from geoexport.pipeline import notify
from geoexport.tasks.workflow import ExecutionState, continue_count, resume_count

MAX_RESUMES = 2
ANNOUNCE_WINDOW = timedelta(days=1)  # as long as a stream keeps its records


class Tasks(notify.Tasks, Protocol):
    def unfinished(self, updated_before: datetime, limit: int = 100) -> list[str]: ...
    def set_execution(self, task_id: Any, execution_arn: str) -> None: ...
    def claim_notification(self, task_id: Any, event: str = "final") -> bool: ...
    def unannounced(
        self, claims: Mapping[TaskStatus, str], after: datetime, before: datetime, limit: int = 100
    ) -> list[TaskRecord]: ...


class Workflow(Protocol):
    def start(self, task_id: Any, resume: int = 0, continued: int = 0) -> str: ...
    def state(self, execution_arn: str) -> ExecutionState: ...


@dataclass
class Outcome:
    resumed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    announced: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "resumed": self.resumed,
            "failed": self.failed,
            "running": self.running,
            "announced": self.announced,
        }


def interrupted_error(cause: str) -> dict[str, str]:
    """The {Error, Cause} the reconciler hands to Notify, as a state machine Catch would."""
    return {"Error": notify.INTERRUPTED, "Cause": cause}


def run(
    tasks: Tasks,
    workflow: Workflow,
    store: notify.Store,
    deliveries: Deliveries,
    now: Callable[[], datetime],
    retention_days: int,
    grace: timedelta,
    max_resumes: int = MAX_RESUMES,
    announce_window: timedelta = ANNOUNCE_WINDOW,
) -> Outcome:
    outcome = Outcome()
    ended_before = now() - grace
    for task_id in tasks.unfinished(now() - grace):
        task = tasks.get(task_id)
        if task.status not in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS):
            continue  # ended since the index was read
        state = workflow.state(task.executionArn) if task.executionArn else ExecutionState.MISSING
        if state in (ExecutionState.RUNNING, ExecutionState.PENDING_REDRIVE):
            outcome.running.append(task_id)
            continue
        if state is ExecutionState.PAUSED:  # resumed while its execution was stopping at the boundary
            if _continue(task, tasks, workflow):
                outcome.resumed.append(task_id)
            continue
        if state is ExecutionState.MISSING and resume_count(task.executionArn) < max_resumes:
            if _resume(task, tasks, workflow):
                outcome.resumed.append(task_id)
            continue  # not startable now (Step Functions unavailable): the next run tries again
        cause = _cause(task, state)
        notify.run(
            task_id,
            tasks,
            store,
            now,
            retention_days,
            outcome=notify.Outcome.FAILED,
            failed_step="Export",
            error=interrupted_error(cause),
        )
        outcome.failed.append(task_id)
    claims = {status: a.claim.value for status, a in changes.ANNOUNCED.items()}
    for task in tasks.unannounced(claims, ended_before - announce_window, ended_before):
        if changes.announce(task, tasks, deliveries):
            outcome.announced.append(str(task.id))
    return outcome


def _continue(task: TaskRecord, tasks: Tasks, workflow: Workflow) -> bool:
    try:
        execution = workflow.start(task.id, continued=continue_count(task.executionArn) + 1)
    except ServiceUnavailable:
        return False
    tasks.set_execution(task.id, execution)
    return True


def _resume(task: TaskRecord, tasks: Tasks, workflow: Workflow) -> bool:
    attempt = resume_count(task.executionArn) + (1 if task.executionArn else 0)
    try:
        execution = workflow.start(task.id, resume=attempt, continued=continue_count(task.executionArn))
    except ServiceUnavailable:
        return False  # the next run tries again; the task stays as it is
    tasks.set_execution(task.id, execution)
    return True


def _cause(task: TaskRecord, state: ExecutionState) -> str:
    if state is ExecutionState.MISSING:
        return (
            f"the export was interrupted {resume_count(task.executionArn) + 1} times (the service stopped "
            "while it ran) and was not resumed again"
        )
    if state is ExecutionState.TIMED_OUT:
        return "the export workflow ran out of time"
    if state is ExecutionState.ABORTED:
        return "the export workflow was stopped by an operator"
    return f"the export workflow ended ({state.value}) without finishing the task"
