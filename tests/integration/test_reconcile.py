"""The reconciler over moto's DynamoDB (issue 11): unfinished tasks found through the ByStatusUpdated index
are resumed when their workflow is missing, failed (once, with a reason and one callback) when it died."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from geoexport import bootstrap
from geoexport.errors import ServiceUnavailable
from geoexport.models import TaskRecord, TaskStatus
from geoexport.pipeline import reconcile
from geoexport.tasks.workflow import ExecutionState, resume_count
from tests.integration.conftest import Cloud
from tests.integration.test_task_repository import REQUEST

ARN = "arn:aws:states:us-east-1:123456789012:execution:geoexport-export"


class Workflow:
    """Step Functions as the reconciler sees it: execution states by ARN; starts are recorded."""

    def __init__(self, states: dict[str, ExecutionState]) -> None:
        self.states = states
        self.started: list[tuple[str, int]] = []
        self.unavailable: set[str] = set()

    def start(self, task_id: object, resume: int = 0, continued: int = 0) -> str:
        if str(task_id) in self.unavailable:
            raise ServiceUnavailable("the export workflow could not be started; try again")
        self.started.append((str(task_id), resume))
        arn = f"{ARN}:{task_id}" + (f"-continue-{continued}" if continued else "")
        arn += f"-resume-{resume}" if resume else ""
        self.states[arn] = ExecutionState.RUNNING
        return arn

    def state(self, execution_arn: str) -> ExecutionState:
        return self.states.get(execution_arn, ExecutionState.MISSING)


def unfinished_task(cloud: Cloud, status: TaskStatus, execution: str | None, age: timedelta) -> TaskRecord:
    then = datetime.now(UTC) - age
    task = TaskRecord(
        id=uuid4(),
        status=TaskStatus.PENDING,
        progress=0,
        request=REQUEST,
        createdAt=then,
        updatedAt=then,
        reservedBytes=1000,
        executionArn=execution,
    )
    tasks = bootstrap.task_repository(cloud.settings)
    tasks.create(task, quota=10**12)
    if status is TaskStatus.IN_PROGRESS:
        tasks.advance(task.id, TaskStatus.IN_PROGRESS, then)
    return tasks.get(task.id)


def run(cloud: Cloud, workflow: Workflow, grace: timedelta = timedelta(minutes=5)) -> reconcile.Outcome:
    return reconcile.run(
        bootstrap.task_repository(cloud.settings),
        workflow,
        bootstrap.exports_store(cloud.settings),
        bootstrap.deliveries(cloud.settings),
        lambda: datetime.now(UTC),
        14,
        grace=grace,
    )


def test_lost_workflows_are_resumed_then_failed_and_dead_ones_failed(cloud: Cloud) -> None:
    tasks = bootstrap.task_repository(cloud.settings)
    old = timedelta(hours=1)
    running = unfinished_task(cloud, TaskStatus.IN_PROGRESS, f"{ARN}:running", old)
    lost = unfinished_task(cloud, TaskStatus.IN_PROGRESS, f"{ARN}:lost", old)
    never_started = unfinished_task(cloud, TaskStatus.PENDING, None, old)
    died = unfinished_task(cloud, TaskStatus.IN_PROGRESS, f"{ARN}:died", old)
    fresh = unfinished_task(cloud, TaskStatus.PENDING, None, timedelta(seconds=1))  # being created now
    workflow = Workflow({f"{ARN}:running": ExecutionState.RUNNING, f"{ARN}:died": ExecutionState.FAILED})
    ledger_before = tasks.ledger()

    outcome = run(cloud, workflow)
    assert str(running.id) in outcome.running
    assert {str(lost.id), str(never_started.id)} <= set(outcome.resumed)
    assert str(died.id) in outcome.failed and str(fresh.id) not in outcome.resumed + outcome.failed
    assert (str(lost.id), 1) in workflow.started and (str(never_started.id), 0) in workflow.started
    assert resume_count(tasks.get(lost.id).executionArn) == 1
    ended = tasks.get(died.id)
    assert ended.status is TaskStatus.FAILED and ended.reservedBytes == 1000
    assert ended.errorReason == (
        "The export workflow ended (FAILED) without finishing the task; request the export again"
    )
    assert tasks.ledger().reserved == ledger_before.reserved - 1000  # its reservation is released

    # The resumed execution is lost again (another restart), twice: then it ends FAILED, once.
    changes = cloud.task_changes()
    for _ in range(2):
        workflow.states = {arn: s for arn, s in workflow.states.items() if str(lost.id) not in arn}
        run(cloud, workflow)
    failed = tasks.get(lost.id)
    assert failed.status is TaskStatus.FAILED and failed.failureKind == "internal"
    assert failed.errorReason is not None and "interrupted 3 times" in failed.errorReason
    changes.deliver(bootstrap.deliveries(cloud.settings))  # as TaskChangesFunction does with the stream
    assert not tasks.claim_notification(lost.id)  # its one final callback was claimed already
    again = run(cloud, workflow)
    assert str(lost.id) not in again.failed + again.resumed  # finished tasks are not looked at again


def test_a_task_whose_workflow_cannot_be_started_now_is_left_for_the_next_run(cloud: Cloud) -> None:
    tasks = bootstrap.task_repository(cloud.settings)
    stuck = unfinished_task(cloud, TaskStatus.PENDING, None, timedelta(hours=1))
    workflow = Workflow({})
    workflow.unavailable.add(str(stuck.id))
    outcome = run(cloud, workflow)
    assert str(stuck.id) not in outcome.resumed + outcome.failed
    assert tasks.get(stuck.id).status is TaskStatus.PENDING  # not failed for Step Functions' hiccup
    workflow.unavailable.clear()
    assert str(stuck.id) in run(cloud, workflow).resumed


def test_an_end_no_change_announced_is_announced_once_by_the_sweep(cloud: Cloud) -> None:
    """A task that ended without its final callback claimed (a lost stream record, a stack stopped
    between the write and the callback) is announced by the next run after the grace, and only once."""
    tasks = bootstrap.task_repository(cloud.settings)
    ended = unfinished_task(cloud, TaskStatus.IN_PROGRESS, f"{ARN}:ended", timedelta(hours=1))
    tasks.advance(ended.id, TaskStatus.FAILED, datetime.now(UTC) - timedelta(minutes=30), errorReason="x")
    recent = unfinished_task(cloud, TaskStatus.IN_PROGRESS, f"{ARN}:recent", timedelta(hours=1))
    tasks.advance(recent.id, TaskStatus.FAILED, datetime.now(UTC), errorReason="x")  # within the grace
    workflow = Workflow({})
    first = run(cloud, workflow)
    assert str(ended.id) in first.announced and str(recent.id) not in first.announced
    assert not tasks.claim_notification(ended.id)  # claimed by the sweep
    assert str(ended.id) not in run(cloud, workflow).announced  # never twice


def test_a_task_resumed_while_its_execution_stopped_at_the_pause_is_continued(cloud: Cloud) -> None:
    """Resume found the paused execution still running, so it started nothing; the execution then ended at
    its Paused state. The reconciler continues the task in a new execution (not a crash restart)."""
    tasks = bootstrap.task_repository(cloud.settings)
    resumed = unfinished_task(cloud, TaskStatus.IN_PROGRESS, f"{ARN}:paused", timedelta(hours=1))
    workflow = Workflow({f"{ARN}:paused": ExecutionState.PAUSED})
    assert str(resumed.id) in run(cloud, workflow).resumed
    assert tasks.get(resumed.id).executionArn == f"{ARN}:{resumed.id}-continue-1"
    assert tasks.get(resumed.id).status is TaskStatus.IN_PROGRESS
