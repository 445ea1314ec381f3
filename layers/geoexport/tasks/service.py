"""The export-task use cases behind the API: create (dedupe, estimate, reservation), read, list, abort."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import UUID, uuid4

from pydantic import BaseModel

from geoexport.errors import (
    Conflict,
    FieldProblem,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    StaleTransition,
    UnprocessableRequest,
)
from geoexport.geometry import aoi, planar
from geoexport.models.catalog import CatalogRecord
from geoexport.models.geojson import RoiFeatureCollection
from geoexport.models.tasks import (
    FINAL_STATUSES,
    Artifact,
    CreateExportTaskRequest,
    DedupeMatch,
    Domain,
    ExportFormat,
    ExportTask,
    Packer,
    TaskRecord,
    TaskStatus,
)
from geoexport.tasks import dedupe
from geoexport.tasks.estimate import Estimate, estimate
from geoexport.tasks.repository import ClaimTaken, Ledger, Page, TaskRepository

MAX_CREATE_ATTEMPTS = 10
LIFECYCLE_SLACK = timedelta(hours=20)  # < the 1 day the lifecycle rule adds to the retention


class Catalog(Protocol):
    def get(self, record_id: UUID | str) -> CatalogRecord: ...


class Workflow(Protocol):
    def start(self, task_id: UUID) -> str: ...
    def stop(self, execution_arn: str, cause: str) -> None: ...


class Store(Protocol):
    def presign_get(self, key: str, expires_in: int, filename: str) -> str: ...
    def touch(self, key: str, older_than: timedelta) -> None: ...


class Geometry(Protocol):
    """GEOS repairs and CRS checks (the geometry function; the API may not import numpy)."""

    def repair(self, geometry: dict[str, Any]) -> tuple[dict[str, Any], str]: ...
    def crs_problem(self, code: str) -> str | None: ...


class NoGeometryService:
    """Without a geometry function: nothing can be repaired, and only EPSG:4326 is known."""

    def repair(self, geometry: dict[str, Any]) -> tuple[dict[str, Any], str]:
        raise planar.GeometryProblem("no geometry service is configured to repair it")

    def crs_problem(self, code: str) -> str | None:
        return None if code == "4326" else "no geometry service is configured to check it"


class Notifier(Protocol):
    def notify_async(self, payload: dict[str, Any]) -> None: ...


class DryRun(BaseModel):
    dryRun: bool = True
    catalogRecordID: UUID
    tilesPerZoom: dict[int, int]
    tiles: int
    estimatedSize: int
    estimatedTime: float
    fitsInStorage: bool
    freeBytes: int


@dataclass(frozen=True)
class CreateOutcome:
    task: ExportTask
    created: bool  # False: an existing task answers the request (dedupe)


@dataclass(frozen=True)
class Limits:
    download_url_ttl_seconds: int
    retention_days: int
    storage_quota_bytes: int
    max_roi_vertices: int = 10_000
    max_export_tiles: int = 2_000_000
    max_export_bytes: int = 20 * 1024**3


def vertex_count(request: CreateExportTaskRequest) -> int:
    return sum(
        len(ring)
        for feature in request.roi_features()
        for polygon in planar.polygon_parts(feature.geometry_mapping())
        for ring in polygon
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def with_defaults(
    request: CreateExportTaskRequest, record: CatalogRecord, national_crs: str | None = None
) -> CreateExportTaskRequest:
    """Fill in what the request leaves open, so the stored request says exactly what is exported.

    No ROI: the record's whole footprint (CLC+'s get_product_europe). A feature without maxResolutionDeg:
    the request's top-level one, else the record's own resolution. A national product in GTiff without
    an explicit artifactCRS: the country's national projection.
    """
    update: dict[str, Any] = {}
    if request.ROI is None:
        collection = RoiFeatureCollection.model_validate(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": record.footprint}]}
        )
    else:
        collection = request.roi_collection()
    fallback = request.maxResolutionDeg or record.maxResolutionDeg
    features = [
        f
        if f.properties.maxResolutionDeg is not None
        else f.model_copy(
            update={"properties": f.properties.model_copy(update={"maxResolutionDeg": fallback})}
        )
        for f in collection.features
    ]
    update["ROI"] = collection.model_copy(update={"features": features})
    crs = request.artifactCRS.removeprefix("EPSG:")
    if (
        national_crs
        and request.format is ExportFormat.GTIFF
        and "artifactCRS" not in request.model_fields_set
    ):
        crs = national_crs
    update["artifactCRS"] = crs
    return request.model_copy(update=update)


def check_output(request: CreateExportTaskRequest, crs_problem: Callable[[str], str | None]) -> None:
    """Format, CRS and packer must fit together; every problem is listed."""
    problems: list[FieldProblem] = []
    if request.format is ExportFormat.GPKG and request.artifactCRS != "4326":
        problems.append(
            FieldProblem(
                "artifactCRS",
                f"GPKG exports are tiled in WorldCRS84Quad (EPSG:4326); use format GTiff for "
                f"EPSG:{request.artifactCRS}",
            )
        )
    elif request.artifactCRS != "4326" and (problem := crs_problem(request.artifactCRS)):
        problems.append(FieldProblem("artifactCRS", problem))
    if request.maxPartSize is not None and request.packer is not Packer.ZIP:
        problems.append(FieldProblem("maxPartSize", "only the zip packer splits into parts"))
    if problems:
        raise UnprocessableRequest("the requested output cannot be made", problems)


WORLD = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}


def vector_defaults(
    request: CreateExportTaskRequest,
    crs_problem: Callable[[str], str | None],
    national_crs: str | None = None,
) -> CreateExportTaskRequest:
    """A VECTOR export: the caller's features (optionally of one model / entity type) in the AoI (default:
    the whole globe), as GeoPackage vector layers in any EPSG code (a country AoI without an explicit
    artifactCRS: the national projection)."""
    problems: list[FieldProblem] = []
    if request.catalogRecordID is not None:
        problems.append(FieldProblem("catalogRecordID", "not used for domain VECTOR (it exports features)"))
    if request.format is not ExportFormat.GPKG:
        problems.append(FieldProblem("format", "VECTOR exports are GeoPackages (GPKG)"))
    model = request.parameters.get("model")
    if model is not None and not (isinstance(model, str) and 0 < len(model) <= 64):
        problems.append(FieldProblem("parameters.model", "a model name"))
    entity = request.parameters.get("entityType")
    if entity is not None and entity not in ("COLLECTION", "DATA", "DATASET"):
        problems.append(FieldProblem("parameters.entityType", "one of COLLECTION, DATA, DATASET"))
    crs = request.artifactCRS.removeprefix("EPSG:")
    if national_crs and "artifactCRS" not in request.model_fields_set:
        crs = national_crs
    if crs != "4326" and (problem := crs_problem(crs)):
        problems.append(FieldProblem("artifactCRS", problem))
    if request.maxPartSize is not None and request.packer is not Packer.ZIP:
        problems.append(FieldProblem("maxPartSize", "only the zip packer splits into parts"))
    if problems:
        raise UnprocessableRequest("the VECTOR export cannot be made as asked", problems)
    roi = request.ROI
    if roi is None:
        roi = RoiFeatureCollection.model_validate(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": WORLD}]}
        )
    return request.model_copy(update={"ROI": roi, "artifactCRS": crs})


def check_against_record(request: CreateExportTaskRequest, record: CatalogRecord) -> None:
    """Refuse, before anything starts, an ROI the record cannot serve; every problem is listed."""
    problems: list[FieldProblem] = []
    for index, feature in enumerate(request.roi_features()):
        where = f"ROI.features[{index}]"
        if not planar.geometries_intersect(feature.geometry_mapping(), record.footprint):
            problems.append(
                FieldProblem(
                    f"{where}.geometry",
                    f"does not intersect the footprint of record {record.id} ({record.name})",
                )
            )
        wanted = feature.properties.resolution
        if wanted < record.maxResolutionDeg * (1 - 1e-9):
            problems.append(
                FieldProblem(
                    f"{where}.properties.maxResolutionDeg",
                    f"{wanted} is finer than the source allows; the finest is {record.maxResolutionDeg}",
                )
            )
        low = feature.properties.minResolutionDeg
        if low is not None and low < wanted:
            problems.append(
                FieldProblem(
                    f"{where}.properties.minResolutionDeg", "must not be finer than maxResolutionDeg"
                )
            )
    if problems:
        raise UnprocessableRequest("the ROI cannot be exported from this record", problems)


class TaskService:
    def __init__(
        self,
        tasks: TaskRepository,
        catalog: Catalog,
        workflow: Workflow,
        store: Store,
        limits: Limits,
        notifier: Notifier | None = None,
        geometry: Geometry | None = None,
        secrets: Callable[[str], str | None] = lambda owner: None,
        clock: Callable[[], datetime] = utcnow,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self._tasks = tasks
        self._catalog = catalog
        self._workflow = workflow
        self._store = store
        self._limits = limits
        self._notifier = notifier
        self._geometry: Geometry = geometry or NoGeometryService()
        self._secrets = secrets
        self._clock = clock
        self._new_id = new_id

    # -- create ------------------------------------------------------------------------------------------
    def prepare(
        self, request: CreateExportTaskRequest
    ) -> tuple[CreateExportTaskRequest, CatalogRecord | None, list[str]]:
        """The request with every default filled in and its AoI normalised, its record (None for VECTOR:
        the feature repository is the source), and notes on what was repaired or chosen (on the task)."""
        notes: list[str] = []
        national: str | None = None
        if request.ROI is not None:
            normalised = aoi.normalise(
                request.ROI, self._geometry.repair, max_vertices=self._limits.max_roi_vertices
            )
            request = request.model_copy(update={"ROI": normalised.roi})
            notes, national = normalised.notes, normalised.national_crs
        if request.ROI is not None and (count := vertex_count(request)) > self._limits.max_roi_vertices:
            raise PayloadTooLarge(
                f"the ROI has {count} vertices; at most {self._limits.max_roi_vertices} are accepted",
                [
                    FieldProblem(
                        "ROI", f"{count} vertices (limit {self._limits.max_roi_vertices}); simplify it"
                    )
                ],
            )
        if request.domain is Domain.VECTOR:
            return vector_defaults(request, self._geometry.crs_problem, national), None, notes
        if request.catalogRecordID is None:
            raise InvalidRequest(
                "a RASTER export names its catalog record",
                [FieldProblem("catalogRecordID", "required for domain RASTER")],
            )
        record = self._catalog.get(request.catalogRecordID)
        request = with_defaults(request, record, national)
        check_against_record(request, record)
        check_output(request, self._geometry.crs_problem)
        return request, record, notes

    def _bounded(self, result: Estimate) -> Estimate:
        """One export may not exceed the configured tiles and bytes (refused before anything starts)."""
        limits = self._limits
        problems = []
        if result.tiles > limits.max_export_tiles:
            problems.append(FieldProblem("ROI", f"{result.tiles} tiles (limit {limits.max_export_tiles})"))
        if result.bytes > limits.max_export_bytes:
            problems.append(
                FieldProblem("ROI", f"about {result.bytes} bytes (limit {limits.max_export_bytes})")
            )
        if problems:
            raise UnprocessableRequest(
                "the export is larger than one export may be: use a smaller ROI or a coarser resolution",
                problems,
            )
        return result

    def dry_run(self, request: CreateExportTaskRequest) -> DryRun:
        request, record, _ = self.prepare(request)
        if record is None:
            raise UnprocessableRequest(
                "dry runs estimate raster tiles", [FieldProblem("domain", "dry runs are for RASTER exports")]
            )
        result = self._bounded(estimate(request, record))
        free = self.free_bytes()
        return DryRun(
            catalogRecordID=record.id,
            tilesPerZoom=result.tilesPerZoom,
            tiles=result.tiles,
            estimatedSize=result.bytes,
            estimatedTime=result.seconds,
            fitsInStorage=result.bytes <= free,
            freeBytes=free,
        )

    def create(
        self, request: CreateExportTaskRequest, owner: str = "anonymous", api: Literal["v2", "v1"] = "v2"
    ) -> CreateOutcome:
        request, record, notes = self.prepare(request)
        if record is None:
            return self._create_vector(request, owner, api, notes)
        fingerprint = dedupe.fingerprint(request, f"{record.productVersion}|{owner}")
        scope = dedupe.scope(request, f"{record.productVersion}|{owner}")
        result: Estimate | None = None
        for _ in range(MAX_CREATE_ATTEMPTS):
            claimed = self._tasks.claimed_task(fingerprint)
            existing = self._tasks.find(claimed) if claimed else None
            if existing is not None and self._alive(existing):
                answer = self._answer_duplicate(existing, request, "exact")
                if answer is not None:
                    return answer
                continue
            if request.parameters.get("dedupe") == "containment":
                for candidate in self._tasks.in_scope(scope):
                    if self._alive(candidate) and dedupe.contained(
                        request.roi_features(),
                        candidate.roi.features,
                    ):
                        answer = self._answer_duplicate(candidate, request, "containment")
                        if answer is not None:
                            return answer
            result = result or self._bounded(estimate(request, record))
            task = self._new_task(
                request,
                owner,
                api,
                notes,
                fingerprint=fingerprint,
                scope=scope,
                estimatedSize=result.bytes,
                estimatedTime=result.seconds,
                reservedBytes=result.bytes,
            )
            try:
                self._tasks.create(task, quota=self._limits.storage_quota_bytes, replace_claim_of=claimed)
            except ClaimTaken:
                continue  # an identical request won the race: answer with its task
            self._start(task)
            return CreateOutcome(self.view(self._tasks.get(task.id)), created=True)
        raise ServiceUnavailable("too many identical requests at once; try again")

    def _new_task(
        self,
        request: CreateExportTaskRequest,
        owner: str,
        api: Literal["v2", "v1"],
        notes: list[str],
        **extra: Any,
    ) -> TaskRecord:
        now = self._clock()
        return TaskRecord(
            id=self._new_id(),
            status=TaskStatus.PENDING,
            progress=0,
            request=request,
            createdAt=now,
            updatedAt=now,
            owner=owner,
            api=api,
            notes=notes,
            **extra,
        )

    def _create_vector(
        self, request: CreateExportTaskRequest, owner: str, api: Literal["v2", "v1"], notes: list[str]
    ) -> CreateOutcome:
        """Features change any time, so a vector export is never answered by an earlier one (no dedupe);
        its size is known only once written (nothing reserved ahead, the quota counts it on upload)."""
        task = self._new_task(request, owner, api, notes)
        self._tasks.create(task, quota=self._limits.storage_quota_bytes, replace_claim_of=None)
        self._start(task)
        return CreateOutcome(self.view(self._tasks.get(task.id)), created=True)

    def _start(self, task: TaskRecord) -> None:
        try:
            execution = self._workflow.start(task.id)
        except ServiceUnavailable as error:
            # Accepted but not startable: end it honestly (and free its reservation) rather than hang.
            self._tasks.advance(
                task.id,
                TaskStatus.FAILED,
                self._clock(),
                ledger=(-task.reservedBytes, 0),
                errorReason=error.message,
                finishedAt=self._clock(),
            )
            raise
        self._tasks.set_execution(task.id, execution)

    def _alive(self, task: TaskRecord) -> bool:
        if task.status in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS):
            return True
        return (
            task.status is TaskStatus.COMPLETED
            and task.expiredAt is not None
            and task.expiredAt > self._clock()
        )

    def _answer_duplicate(
        self, task: TaskRecord, request: CreateExportTaskRequest, rule: str
    ) -> CreateOutcome | None:
        """Answer with an existing task; None when it changed under us (look again)."""
        match = DedupeMatch(matchedTaskId=task.id, rule=rule)  # type: ignore[arg-type]
        try:
            if task.status is TaskStatus.COMPLETED:
                extended = self._clock() + timedelta(days=self._limits.retention_days)
                if task.expiredAt is None or extended > task.expiredAt:
                    for artifact in task.artifacts:
                        # The bucket deletes objects retention + 1 days after they were written; one
                        # older than LIFECYCLE_SLACK would go before the new expiredAt: rewrite it.
                        self._store.touch(artifact.key, older_than=LIFECYCLE_SLACK)
                    if not self._tasks.extend_expiry(task.id, extended):
                        # A concurrent duplicate extended it first (fine), unless it is no longer alive.
                        current = self._tasks.get(task.id)
                        if not (current.status is TaskStatus.COMPLETED and self._alive(current)):
                            return None
            else:
                self._tasks.merge_webhooks(task.id, request.webhooks)
        except StaleTransition:
            return None
        view = self.view(self._tasks.get(task.id)).model_copy(update={"isDuplicated": True, "dedupe": match})
        return CreateOutcome(view, created=False)

    # -- read --------------------------------------------------------------------------------------------
    def owned(self, task_id: UUID | str, owner: str) -> TaskRecord:
        task = self._tasks.get(task_id)
        if task.owner != owner:  # another caller's task does not exist, as far as this caller can tell
            raise NotFound(f"export task {task_id} does not exist")
        return task

    def get(self, task_id: UUID, owner: str = "anonymous") -> ExportTask:
        return self.view(self.owned(task_id, owner))

    def list_tasks(
        self, owner: str, status: TaskStatus | None, limit: int, next_token: str | None
    ) -> tuple[list[ExportTask], str | None]:
        page: Page = self._tasks.page(owner, status, limit, next_token)
        return [self.view(task) for task in page.items], page.next_token

    def free_bytes(self) -> int:
        ledger: Ledger = self._tasks.ledger()
        return max(0, self._limits.storage_quota_bytes - ledger.committed)

    # -- abort -------------------------------------------------------------------------------------------
    def abort(self, task_id: UUID, owner: str = "anonymous") -> ExportTask:
        task = self.owned(task_id, owner)
        if task.status in FINAL_STATUSES or task.status is TaskStatus.EXPIRED:
            raise Conflict(
                f"export task {task_id} already ended ({task.status.value})",
                [FieldProblem("id", f"the task is {task.status.value}")],
            )
        now = self._clock()
        try:
            self._tasks.advance(
                task.id,
                TaskStatus.ABORTED,
                now,
                ledger=(-task.reservedBytes, 0),
                finishedAt=now,
                errorReason="aborted at the user's request",
            )
        except StaleTransition as error:
            raise Conflict(f"export task {task_id} ended meanwhile") from error
        if task.executionArn:
            self._workflow.stop(task.executionArn, "aborted at the user's request")
        if self._notifier is not None:
            self._notifier.notify_async({"taskId": str(task.id), "outcome": "aborted"})
        return self.view(self._tasks.get(task.id))

    def webhook_secret(self, owner: str) -> str | None:
        """The secret the owner's callbacks are signed with."""
        return self._secrets(owner)

    # -- the API view ------------------------------------------------------------------------------------
    def view(self, task: TaskRecord) -> ExportTask:
        """Download links are minted now, short-lived, and never outlive ``expiredAt``."""
        artifacts: list[Artifact] = []
        if task.status is TaskStatus.COMPLETED:
            lifetime = self._limits.download_url_ttl_seconds
            if task.expiredAt is not None:
                lifetime = min(lifetime, int((task.expiredAt - self._clock()).total_seconds()))
            for stored in task.artifacts:
                url = self._store.presign_get(stored.key, lifetime, stored.name) if lifetime > 0 else None
                artifacts.append(
                    Artifact(
                        type=stored.type, name=stored.name, size=stored.size, sha256=stored.sha256, url=url
                    )
                )
        request = task.request
        return ExportTask(
            id=task.id,
            status=task.status,
            progress=task.progress,
            catalogRecordID=request.catalogRecordID,
            domain=request.domain,
            ROI=task.roi.model_dump(mode="json", exclude_none=True),
            artifactCRS=request.artifactCRS,
            format=request.format,
            packer=request.packer,
            maxPartSize=request.maxPartSize,
            notes=task.notes,
            description=request.description,
            keywords=request.keywords,
            parameters=request.parameters,
            webhooks=task.all_webhooks(),
            artifacts=artifacts,
            estimatedSize=task.estimatedSize,
            estimatedTime=task.estimatedTime,
            createdAt=task.createdAt,
            expiredAt=task.expiredAt,
            finishedAt=task.finishedAt,
            errorReason=task.errorReason,
            failureKind=task.failureKind,
            webhookDeliveries=task.latest_deliveries(),
        )
