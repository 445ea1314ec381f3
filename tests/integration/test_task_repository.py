"""Task state in DynamoDB (moto over HTTP): conditional writes keep status from going backwards."""

from __future__ import annotations

import base64
import itertools
import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from geoexport import bootstrap
from geoexport.errors import InvalidRequest, StaleTransition, UnprocessableRequest
from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.models.tasks import MAX_WEBHOOKS_PER_TASK, Webhook
from geoexport.tasks.transitions import ALLOWED_FROM
from tests.integration.conftest import Cloud

REQUEST = CreateExportTaskRequest.model_validate(
    {
        "catalogRecordID": str(uuid4()),
        "domain": "RASTER",
        "ROI": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"maxResolutionDeg": 0.1},
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
                    },
                }
            ],
        },
    }
)

ORDER = [
    TaskStatus.PENDING,
    TaskStatus.IN_PROGRESS,
    TaskStatus.COMPLETED,
    TaskStatus.EXPIRED,
    TaskStatus.ARCHIVED,
]


def new_task(cloud: Cloud) -> TaskRecord:
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(), status=TaskStatus.PENDING, progress=0, request=REQUEST, createdAt=now, updatedAt=now
    )
    bootstrap.task_repository(cloud.settings).create(task)
    return task


def test_lifecycle_and_progress_only_move_forward(cloud: Cloud) -> None:
    tasks = bootstrap.task_repository(cloud.settings)
    task = new_task(cloud)
    assert tasks.start(task.id).status is TaskStatus.IN_PROGRESS
    tasks.report_progress(task.id, 40)
    tasks.report_progress(task.id, 20)  # a re-run step reporting less is ignored
    assert tasks.get(task.id).progress == 40
    now = datetime.now(UTC)
    tasks.advance(task.id, TaskStatus.COMPLETED, now, progress=100, finishedAt=now)
    with pytest.raises(StaleTransition):
        tasks.advance(task.id, TaskStatus.FAILED, now, errorReason="late failure")
    with pytest.raises(StaleTransition):
        tasks.start(task.id)
    stored = tasks.get(task.id)
    assert (stored.status, stored.progress, stored.errorReason) == (TaskStatus.COMPLETED, 100, None)


def test_random_transition_storms_never_move_status_backwards(cloud: Cloud) -> None:
    """Property: from any history of attempted moves, the stored status sequence is a forward path."""
    tasks = bootstrap.task_repository(cloud.settings)
    rng = random.Random(5)
    statuses = list(TaskStatus)
    for _ in range(15):
        task = new_task(cloud)
        seen = [TaskStatus.PENDING]
        for _ in range(12):
            target = rng.choice(statuses)
            current = tasks.get(task.id).status
            try:
                tasks.advance(task.id, target, datetime.now(UTC))
                moved = True
            except StaleTransition:
                moved = False
            assert moved == (current in ALLOWED_FROM[target]), (current, target)
            seen.append(tasks.get(task.id).status)
        final_states = {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED}
        for before, after in itertools.pairwise(seen):
            assert not (before in final_states and after in {TaskStatus.PENDING, TaskStatus.IN_PROGRESS})
            if before in ORDER and after in ORDER:
                assert ORDER.index(after) >= ORDER.index(before)


def test_the_final_notification_is_claimed_exactly_once(cloud: Cloud) -> None:
    tasks = bootstrap.task_repository(cloud.settings)
    task = new_task(cloud)
    with ThreadPoolExecutor(max_workers=10) as pool:
        claims = list(pool.map(lambda _: tasks.claim_notification(task.id), range(20)))
    assert claims.count(True) == 1


@pytest.mark.parametrize(
    "forged",
    [
        {"id": {"S": "x"}},  # decodes, but lacks the index's keys (was a 502)
        {"id": 5},
        {"id": {"S": "x"}, "owner": {"S": "o"}, "createdAt": {"N": "1"}},
        [1, 2],
    ],
)
def test_page_tokens_that_are_not_ours_are_a_400(cloud: Cloud, forged: object) -> None:
    token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(InvalidRequest) as refused:
        bootstrap.task_repository(cloud.settings).page("pager", None, 1, token)
    assert refused.value.problems[0].field == "nextToken"


def test_a_page_token_only_pages_the_listing_that_issued_it(cloud: Cloud) -> None:
    tasks = bootstrap.task_repository(cloud.settings)
    now = datetime.now(UTC)
    for _ in range(2):
        tasks.create(
            TaskRecord(
                id=uuid4(),
                status=TaskStatus.PENDING,
                progress=0,
                request=REQUEST,
                createdAt=now,
                updatedAt=now,
                owner="pager-a",
            )
        )
    first = tasks.page("pager-a", None, 1, None)
    assert first.next_token is not None
    assert len(tasks.page("pager-a", None, 1, first.next_token).items) == 1  # its own listing: the next page
    with pytest.raises(InvalidRequest):  # another owner's listing (or another status filter)
        tasks.page("pager-b", None, 1, first.next_token)
    with pytest.raises(InvalidRequest):
        tasks.page("pager-a", TaskStatus.PENDING, 1, first.next_token)


def test_merged_webhooks_are_bounded_and_not_repeated(cloud: Cloud) -> None:
    """Issue 12: 150 identical creates with 10 hooks each grew one task past DynamoDB's 400 KB."""
    tasks = bootstrap.task_repository(cloud.settings)
    task = new_task(cloud)

    def hooks(start: int) -> list[Webhook]:
        return [
            Webhook.model_validate({"url": f"https://hooks.example.org/{i}", "events": ["TASK_COMPLETED"]})
            for i in range(start, start + 10)
        ]

    tasks.merge_webhooks(task.id, hooks(0))
    tasks.merge_webhooks(task.id, hooks(0))  # the same again: nothing added
    assert len(tasks.get(task.id).extraWebhooks) == 10
    for start in range(10, MAX_WEBHOOKS_PER_TASK, 10):
        tasks.merge_webhooks(task.id, hooks(start))
    assert len(tasks.get(task.id).extraWebhooks) == MAX_WEBHOOKS_PER_TASK
    with pytest.raises(UnprocessableRequest) as refused:
        tasks.merge_webhooks(task.id, hooks(MAX_WEBHOOKS_PER_TASK))
    assert refused.value.problems[0].field == "webhooks"
    assert len(tasks.get(task.id).extraWebhooks) == MAX_WEBHOOKS_PER_TASK
