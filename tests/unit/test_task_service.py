"""TaskService with in-memory fakes: what is refused before anything starts, and link lifetimes."""

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from geoexport.errors import NotFound, PayloadTooLarge, ServiceUnavailable, UnprocessableRequest
from geoexport.geometry.planar import GeometryProblem
from geoexport.models import (
    ArtifactType,
    CatalogRecord,
    CreateExportTaskRequest,
    SourceLocation,
    StoredArtifact,
    TaskRecord,
    TaskStatus,
    Webhook,
)
from geoexport.tasks.repository import Ledger, Page
from geoexport.tasks.service import Limits, TaskService

FOOTPRINT = {"type": "Polygon", "coordinates": [[[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]]}
RECORD = CatalogRecord(
    id=uuid4(),
    name="r",
    footprint=FOOTPRINT,
    maxResolutionDeg=0.001,
    crs="EPSG:4326",
    bands=3,
    dtype="uint8",
    width=10,
    height=10,
    source=SourceLocation(bucket="b", key="k"),
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Fakes:
    """The state the fakes below share (one per interface the service depends on)."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskRecord] = {}
        self.started: list[UUID] = []
        self.fail_start = False
        self.links: list[tuple[str, int]] = []


class FakeCatalog:
    def get(self, record_id: UUID | str) -> CatalogRecord:
        if str(record_id) == str(RECORD.id):
            return RECORD
        raise NotFound(f"{record_id} does not exist")


class FakeTasks:
    def __init__(self, fakes: Fakes) -> None:
        self.tasks = fakes.tasks

    def get(self, task_id: UUID | str) -> TaskRecord:
        if str(task_id) in self.tasks:
            return self.tasks[str(task_id)]
        raise NotFound(f"{task_id} does not exist")

    def find(self, task_id: UUID | str) -> TaskRecord | None:
        return self.tasks.get(str(task_id))

    def page(self, owner: str, status: TaskStatus | None, limit: int, next_token: str | None) -> Page:
        return Page([t for t in self.tasks.values() if t.owner == owner][:limit], None)

    def create(
        self,
        record: TaskRecord,
        quota: int | None = None,
        replace_claim_of: str | None = None,
        client_quota: Any = None,
    ) -> None:
        self.tasks[str(record.id)] = record

    def claimed_task(self, fingerprint: str) -> str | None:
        return next((str(t.id) for t in self.tasks.values() if t.fingerprint == fingerprint), None)

    def merge_webhooks(self, task_id: UUID | str, hooks: list[Webhook]) -> None:
        task = self.tasks[str(task_id)]
        self.tasks[str(task_id)] = task.model_copy(update={"extraWebhooks": [*task.extraWebhooks, *hooks]})

    def extend_expiry(self, task_id: UUID | str, expired_at: datetime) -> bool:
        task = self.tasks[str(task_id)]
        self.tasks[str(task_id)] = task.model_copy(update={"expiredAt": expired_at})
        return True

    def in_scope(self, scope: str, limit: int = 50) -> list[TaskRecord]:
        return []

    def ledger(self) -> Ledger:
        return Ledger(used=0, reserved=sum(t.reservedBytes for t in self.tasks.values()))

    def set_execution(self, task_id: UUID, execution_arn: str) -> None:
        self.tasks[str(task_id)] = self.tasks[str(task_id)].model_copy(update={"executionArn": execution_arn})

    def advance(
        self,
        task_id: UUID | str,
        status: TaskStatus,
        now: datetime,
        progress: int | None = None,
        ledger: tuple[int, int] | None = None,
        **fields: Any,
    ) -> None:
        self.tasks[str(task_id)] = self.tasks[str(task_id)].model_copy(update={"status": status, **fields})


class FakeWorkflow:
    def __init__(self, fakes: Fakes) -> None:
        self.fakes = fakes

    def start(self, task_id: UUID) -> str:
        if self.fakes.fail_start:
            raise ServiceUnavailable("the export workflow could not be started; try again")
        self.fakes.started.append(task_id)
        return f"arn:execution:{task_id}"

    def stop(self, execution_arn: str, cause: str) -> None:
        pass


class FakeStore:
    def __init__(self, fakes: Fakes) -> None:
        self.links = fakes.links

    def touch(self, key: str, older_than: timedelta) -> None:
        pass

    def presign_get(self, key: str, expires_in: int, filename: str) -> str:
        self.links.append((key, expires_in))
        return f"http://s3/{key}?expires={expires_in}"


class NoRepairs:
    """Geometry without GEOS: nothing can be repaired, and only EPSG:4326 is known."""

    def repair(self, geometry: dict[str, Any]) -> tuple[dict[str, Any], str]:
        raise GeometryProblem("no geometry service is configured to repair it")

    def crs_problem(self, code: str) -> str | None:
        return None if code == "4326" else "no geometry service is configured to check it"


def service(fakes: Fakes, now: datetime = NOW, **bounds: int) -> TaskService:
    limits = Limits(download_url_ttl_seconds=3600, retention_days=14, storage_quota_bytes=10**12, **bounds)
    return TaskService(
        FakeTasks(fakes),
        FakeCatalog(),
        FakeWorkflow(fakes),
        FakeStore(fakes),
        limits,
        geometry=NoRepairs(),
        clock=lambda: now,
    )


def request(polygon: list[list[float]], res: float = 0.01) -> CreateExportTaskRequest:
    return CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(RECORD.id),
            "domain": "RASTER",
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"maxResolutionDeg": res},
                        "geometry": {"type": "Polygon", "coordinates": [polygon]},
                    }
                ],
            },
        }
    )


INSIDE = [[12, 12], [13, 12], [13, 13], [12, 13], [12, 12]]
OUTSIDE = [[40, 40], [41, 40], [41, 41], [40, 41], [40, 40]]


def test_create_stores_pending_task_and_starts_one_execution() -> None:
    fakes = Fakes()
    task = service(fakes).create(request(INSIDE)).task
    assert task.status is TaskStatus.PENDING and task.progress == 0
    assert fakes.started == [task.id]
    assert fakes.tasks[str(task.id)].executionArn == f"arn:execution:{task.id}"


def test_roi_outside_footprint_and_too_fine_resolution_are_refused_before_start() -> None:
    fakes = Fakes()
    with pytest.raises(UnprocessableRequest) as refused:
        service(fakes).create(request(OUTSIDE, res=0.0001))
    fields = {p.field for p in refused.value.problems}
    assert fields == {"ROI.features[0].geometry", "ROI.features[0].properties.maxResolutionDeg"}
    assert fakes.tasks == {} and fakes.started == []


def test_unknown_record_is_not_found() -> None:
    fakes = Fakes()
    body = request(INSIDE).model_copy(update={"catalogRecordID": uuid4()})
    assert fakes.tasks == {}
    with pytest.raises(NotFound):
        service(fakes).create(body)
    assert fakes.started == []


def test_a_task_that_cannot_start_ends_failed_not_pending() -> None:
    fakes = Fakes()
    fakes.fail_start = True
    with pytest.raises(ServiceUnavailable):
        service(fakes).create(request(INSIDE))
    (stored,) = fakes.tasks.values()
    assert stored.status is TaskStatus.FAILED
    assert stored.errorReason and "could not be started" in stored.errorReason


def test_links_are_minted_per_view_and_never_outlive_expiry() -> None:
    fakes = Fakes()
    task = TaskRecord(
        id=uuid4(),
        status=TaskStatus.COMPLETED,
        progress=100,
        request=request(INSIDE),
        createdAt=NOW,
        updatedAt=NOW,
        expiredAt=NOW + timedelta(minutes=10),
        artifacts=[
            StoredArtifact(
                type=ArtifactType.GPKG, name="a.gpkg", size=1, sha256="0" * 64, key="exports/x/a.gpkg"
            )
        ],
    )
    view = service(fakes).view(task)
    assert view.artifacts[0].url is not None
    assert fakes.links == [("exports/x/a.gpkg", 600)]
    expired = service(fakes, now=NOW + timedelta(hours=1)).view(task)
    assert expired.artifacts[0].url is None


def test_links_only_for_completed_tasks() -> None:
    fakes = Fakes()
    task = TaskRecord(
        id=uuid4(),
        status=TaskStatus.IN_PROGRESS,
        progress=50,
        request=request(INSIDE),
        createdAt=NOW,
        updatedAt=NOW,
    )
    assert service(fakes).view(task).artifacts == []


def test_identical_request_answers_with_the_running_task() -> None:
    fakes = Fakes()
    first = service(fakes).create(request(INSIDE))
    second = service(fakes).create(request(INSIDE))
    assert first.created and not second.created
    assert second.task.id == first.task.id and second.task.isDuplicated
    assert second.task.dedupe is not None and second.task.dedupe.rule == "exact"
    assert len(fakes.started) == 1


def test_no_roi_means_the_whole_footprint_at_the_records_resolution() -> None:
    fakes = Fakes()
    body = request(INSIDE).model_copy(update={"ROI": None})
    task = service(fakes).create(body).task
    (feature,) = task.ROI["features"]
    assert feature["geometry"] == FOOTPRINT
    assert feature["properties"]["maxResolutionDeg"] >= RECORD.maxResolutionDeg


def test_too_many_vertices_is_413_before_anything() -> None:
    fakes = Fakes()
    ring = [
        [12 + 0.5 * math.cos(k / 50 * math.tau), 12 + 0.5 * math.sin(k / 50 * math.tau)] for k in range(50)
    ]
    with pytest.raises(PayloadTooLarge) as refused:
        service(fakes, max_roi_vertices=20).create(request([*ring, ring[0]]))
    assert refused.value.problems[0].field == "ROI" and "51 vertices" in refused.value.problems[0].reason
    assert fakes.tasks == {} and fakes.started == []


def test_an_export_over_the_tile_or_byte_bound_is_refused_before_anything() -> None:
    fakes = Fakes()
    with pytest.raises(UnprocessableRequest, match="larger than one export may be") as refused:
        service(fakes, max_export_tiles=3).create(request(INSIDE, res=0.001))
    assert "limit 3" in refused.value.problems[0].reason
    with pytest.raises(UnprocessableRequest):
        service(fakes, max_export_bytes=1000).dry_run(request(INSIDE))
    assert fakes.tasks == {} and fakes.started == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://user:secret@hooks.example.org/x",
        "http://[::7f00:1]/",
    ],
)
def test_a_webhook_to_a_private_literal_or_with_credentials_is_refused_at_registration(url: str) -> None:
    """Issue 12: refused when registered, not only when the callback would connect."""
    fakes = Fakes()
    body = request(INSIDE).model_copy(
        update={"webhooks": [Webhook.model_validate({"url": url, "events": ["TASK_COMPLETED"]})]}
    )
    with pytest.raises(UnprocessableRequest) as refused:
        service(fakes).create(body)
    assert refused.value.problems[0].field == "webhooks[0].url" and fakes.tasks == {}


def test_a_ring_across_the_antimeridian_is_refused_with_how_to_split_it() -> None:
    """Issue 12: it was read as a planar polygon across the whole world, silently."""
    across = [[170.0, 10.0], [-170.0, 10.0], [-170.0, 20.0], [170.0, 20.0], [170.0, 10.0]]
    with pytest.raises(UnprocessableRequest) as refused:
        service(Fakes()).create(request(across))
    (problem,) = refused.value.problems
    assert problem.field == "ROI.features[0].geometry"
    assert "antimeridian" in problem.reason and "split it at +-180" in problem.reason


def test_an_roi_split_at_the_antimeridian_is_not_refused_for_it() -> None:
    east = [[170.0, 10.0], [180.0, 10.0], [180.0, 20.0], [170.0, 20.0], [170.0, 10.0]]
    west = [[-180.0, 10.0], [-170.0, 10.0], [-170.0, 20.0], [-180.0, 20.0], [-180.0, 10.0]]
    split = request(east).model_copy(
        update={
            "ROI": request(east).ROI.model_copy(  # type: ignore[union-attr]
                update={"features": [*request(east).roi_features(), *request(west).roi_features()]}
            )
        }
    )
    with pytest.raises(UnprocessableRequest) as refused:  # refused, but only for missing the record
        service(Fakes()).create(split)
    assert all("antimeridian" not in p.reason for p in refused.value.problems)
