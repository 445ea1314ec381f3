"""Export task models: the create request, the stored record and the API view of a task."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from geoexport.geometry import grid
from geoexport.models.geojson import AoiInput, RoiFeature, RoiFeatureCollection

#: Webhooks one request may register, and one task may hold with those merged in from identical requests.
MAX_WEBHOOKS_PER_REQUEST = 10
MAX_WEBHOOKS_PER_TASK = 100  # >= 50: fifty identical concurrent creates each add their hook (issue 6)


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    PAUSED = "PAUSED"
    EXPIRED = "EXPIRED"
    ARCHIVED = "ARCHIVED"


FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED})


class Domain(StrEnum):
    RASTER = "RASTER"  # a catalog record's raster, tiled (GPKG) or as a COG (GTiff)
    VECTOR = "VECTOR"  # the caller's features of the feature repository, as GeoPackage vector layers
    DEM = "DEM"  # an elevation record's heights: a GPKG 2D gridded coverage (float32 TIFF tiles) or a COG
    THREE_D = "3D"  # seed 001's third domain: accepted by the schema, refused with a 422 (not supported)


class FailureKind(StrEnum):
    INPUT = "input"  # the request cannot be served as asked (CLC+'s INVALID); retrying will not help
    INTERNAL = "internal"


class Api(StrEnum):
    """Which contract a task's callbacks follow."""

    V2 = "v2"
    V1 = "v1"


class WebhookEvent(StrEnum):
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_FAILED = "TASK_FAILED"
    TASK_PROGRESS = "TASK_PROGRESS"
    TASK_EXPIRED = "TASK_EXPIRED"


class ArtifactType(StrEnum):
    GPKG = "GPKG"
    GTIFF = "GTIFF"  # a Cloud Optimized GeoTIFF
    SIDECAR = "SIDECAR"  # .tfw, .aux.xml, .qml, .clr next to a GeoTIFF
    METADATA = "METADATA"
    STAC = "STAC"  # a STAC Item describing the export
    BUNDLE = "BUNDLE"  # a zip (part), tar.gz or tar.bz2 holding the data files
    QUICKLOOK = "QUICKLOOK"  # a small PNG preview of a raster export in EPSG:3857 (REGARDS' QUICKLOOK)
    GEOJSON = (
        "GEOJSON"  # VECTOR: a FeatureCollection (.geojson) or one Feature per line (.geojsonl), EPSG:4326
    )
    CSV = "CSV"  # VECTOR: records with the geometry as WKT
    JSON = "JSON"  # VECTOR: records as a JSON array, or one file per record
    XML = "XML"  # VECTOR: records as XML (validated by the SCHEMA beside it)
    SCHEMA = "SCHEMA"  # VECTOR: the XSD of the XML files
    FILE = "FILE"  # VECTOR with files: a feature's stored file, copied (inside the bundle, files/...)


class ExportFormat(StrEnum):
    GPKG = "GPKG"  # tiled, WorldCRS84Quad
    GTIFF = "GTiff"  # Cloud Optimized GeoTIFF in any CRS


class Packer(StrEnum):
    """How the data files are delivered (easydb's packers): apart, in one zip (or parts), or one tar.gz or
    tar.bz2 (bzip2: smaller for text-like data such as vector exports, slower to make)."""

    NONE = "none"
    ZIP = "zip"
    TAR_GZ = "tar.gz"
    TAR_BZ2 = "tar.bz2"


class TransportKind(StrEnum):
    """Where an export goes once it is done (easydb's ``_transports``)."""

    DOWNLOAD = "download"  # presigned links on the task (always; the default)
    S3 = "s3"  # copies in a bucket the service may write to, checksums verified
    EMAIL = "email"  # a message with the links and sizes, through SES


class TransportState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


MAX_TRANSPORTS = 5
MAX_RECIPIENTS = 10
BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
EMAIL_ADDRESS = r"^[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"


class Transport(BaseModel):
    """One delivery of a finished export: ``s3`` needs ``bucket``; ``email`` needs ``recipients``."""

    model_config = ConfigDict(extra="forbid")
    type: TransportKind
    bucket: str | None = Field(None, pattern=BUCKET_NAME, description="s3: the bucket to copy into")
    prefix: str = Field(
        "",
        max_length=512,
        pattern=r"^[A-Za-z0-9!_.*'()/-]*$",
        description="s3: key prefix the artifacts are copied under (e.g. 'exports/')",
    )
    recipients: list[str] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="email: addresses the message goes to",
    )
    message: str = Field("", max_length=2000, description="email: text put above the links")

    @model_validator(mode="after")
    def _complete(self) -> Transport:
        import re

        if self.type is TransportKind.S3 and not self.bucket:
            raise ValueError("an s3 transport needs a bucket")
        if self.type is TransportKind.EMAIL:
            if not self.recipients:
                raise ValueError("an email transport needs recipients")
            for address in self.recipients:
                if not re.match(EMAIL_ADDRESS, address):
                    raise ValueError(f"{address!r} is not an email address")
        if self.type is not TransportKind.S3 and (self.bucket or self.prefix):
            raise ValueError("bucket and prefix are for s3 transports")
        if self.type is not TransportKind.EMAIL and (self.recipients or self.message):
            raise ValueError("recipients and message are for email transports")
        return self

    def target(self) -> str:
        """Where it delivers, as a person reads it."""
        if self.type is TransportKind.S3:
            return f"s3://{self.bucket}/{self.prefix}"
        if self.type is TransportKind.EMAIL:
            return ", ".join(self.recipients)
        return "presigned links"


class TransportStatus(BaseModel):
    """Where one transport of a task stands."""

    index: int = Field(description="its place in the request's transports")
    type: TransportKind
    target: str
    state: TransportState
    reason: str | None = Field(default=None, description="why it failed (what to fix before a retry)")
    attempts: int = 0
    updatedAt: datetime | None = None
    delivered: list[str] = Field(
        default_factory=list, description="what it delivered: the copies' s3:// URIs, or the SES message id"
    )


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl
    events: list[WebhookEvent] = Field(min_length=1)


class CreateExportTaskRequest(BaseModel):
    """Body of ``POST /export-tasks`` (seed 001)."""

    model_config = ConfigDict(extra="forbid")
    catalogRecordID: UUID | None = Field(None, description="RASTER: the record to export (VECTOR has none)")
    domain: Domain
    # Any AoI form (see AoiInput); stored as a FeatureCollection once normalised. Absent: the record's
    # whole footprint (CLC+'s get_product_europe).
    ROI: AoiInput | None = None
    maxResolutionDeg: float | None = Field(
        None,
        ge=grid.MIN_RESOLUTION_DEG,
        le=grid.MAX_RESOLUTION_DEG,
        description="for AoI forms without per-feature properties; absent: the record's own resolution",
    )
    format: ExportFormat = ExportFormat.GPKG
    artifactCRS: str = Field(
        "4326",
        pattern=r"^(EPSG:)?[0-9]{4,6}$",
        description="EPSG code of the output (GPKG: 4326 only, WorldCRS84Quad); a country AoI without it "
        "gets the national projection",
    )
    packer: Packer = Packer.NONE
    maxPartSize: int | None = Field(
        None, ge=1024 * 1024, description="zip only: split into parts no larger than this many bytes"
    )
    description: str = Field("", max_length=2000)
    keywords: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    webhooks: list[Webhook] = Field(default_factory=list, max_length=MAX_WEBHOOKS_PER_REQUEST)
    transports: list[Transport] = Field(
        default_factory=list,
        max_length=MAX_TRANSPORTS,
        description="where the finished export also goes (download links are always there); each has its "
        "own state on the task, and a failed one does not fail the export",
    )

    def roi_collection(self) -> RoiFeatureCollection:
        """The ROI once normalised (every stored request has one)."""
        assert isinstance(self.ROI, RoiFeatureCollection), "the ROI is normalised before it is used"
        return self.ROI

    def roi_features(self) -> list[RoiFeature]:
        return self.roi_collection().features


class PausedBy(StrEnum):
    """Who paused a task: its owner (POST .../pause) or the operator (POST /operations/pause: everyone's)."""

    OWNER = "owner"
    OPERATOR = "operator"


class OperatorPause(BaseModel):
    """The operator-wide pause (e.g. storage maintenance): while on, every export stops at its next step
    boundary (PAUSED, ``pausedBy: operator``); turning it off resumes exactly those."""

    paused: bool = False
    reason: str = ""
    since: datetime | None = None
    by: str | None = None


class OnExpiry(StrEnum):
    """What happens to a completed export at its expiredAt (``parameters.onExpiry``)."""

    DELETE = "delete"  # EXPIRED: the files are deleted (the default)
    ARCHIVE = "archive"  # ARCHIVED: the files move to archive storage; POST .../restore brings them back


class ArchiveInfo(BaseModel):
    """Where an archived export's files went, and how far a restore is (``restoreRequestedAt`` set and the
    task still ARCHIVED: the archive storage is thawing the files; on AWS that takes hours)."""

    storageClass: str
    archivedAt: datetime
    restoreTier: str | None = None
    restoreRequestedAt: datetime | None = None
    restoredAt: datetime | None = None


class StoredArtifact(BaseModel):
    """An artifact as stored on the task: where it lives, not a link (links are minted per GET)."""

    type: ArtifactType
    name: str
    size: int
    sha256: str
    key: str
    #: QUICKLOOK: the image's corners as [west, south, east, north] in degrees, to overlay it on a map.
    bounds: list[float] | None = None


class Artifact(BaseModel):
    type: ArtifactType
    name: str
    size: int
    sha256: str
    url: str | None = None


class QuicklookView(BaseModel):
    """A COMPLETED raster export's preview, ready for a web map's image source (same origin, no CORS)."""

    taskId: UUID
    name: str
    mediaType: str = "image/png"
    crs: str = "EPSG:3857"
    bounds: list[float] = Field(description="[west, south, east, north] in degrees")
    coordinates: list[list[float]] = Field(
        description="the image's corners as MapLibre's image source wants them: top left, top right, "
        "bottom right, bottom left ([lon, lat] each)"
    )
    width: int
    height: int
    dataUrl: str = Field(description="the PNG as a data: URL")


class DeliveryOutcome(StrEnum):
    """Where one webhook delivery stands: ``retrying`` until it is ``delivered`` or ``exhausted``."""

    DELIVERED = "delivered"  # a 2xx answer
    RETRYING = "retrying"  # failed so far; the next attempt is queued (nextAttemptAt)
    EXHAUSTED = "exhausted"  # every attempt of the retry window failed; in the dead-letter queue
    REFUSED = "refused"  # the destination is not allowed (SSRF guard); never retried


class WebhookDelivery(BaseModel):
    """The outcome of one attempt to deliver one event to one webhook (the latest per hook is shown)."""

    url: str
    event: WebhookEvent
    statusCode: int | None = None
    error: str | None = None
    deliveredAt: datetime  # when this attempt ended
    outcome: DeliveryOutcome = DeliveryOutcome.DELIVERED
    attempts: int = 1
    nextAttemptAt: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.statusCode is not None and 200 <= self.statusCode < 300


class DedupeRule(StrEnum):
    EXACT = "exact"  # the same request (fingerprint)
    CONTAINMENT = "containment"  # an export whose ROI contains this one's (parameters.dedupe)


class DedupeMatch(BaseModel):
    """Why a create answered with an existing task."""

    matchedTaskId: UUID
    rule: DedupeRule


class TaskRecord(BaseModel):
    """A task as stored in the tasks table. ``request.ROI`` is always filled in (defaults applied)."""

    id: UUID
    status: TaskStatus
    progress: int = Field(ge=0, le=100)
    request: CreateExportTaskRequest
    createdAt: datetime
    updatedAt: datetime
    finishedAt: datetime | None = None
    expiredAt: datetime | None = None
    errorReason: str | None = None
    artifacts: list[StoredArtifact] = Field(default_factory=list)
    executionArn: str | None = None
    owner: str = "anonymous"
    api: Api = Api.V2  # which contract its callbacks follow
    fingerprint: str | None = None
    scope: str | None = None
    estimatedSize: int | None = None
    estimatedTime: float | None = None
    reservedBytes: int = 0
    extraWebhooks: list[Webhook] = Field(default_factory=list)  # merged in from duplicate requests
    notes: list[str] = Field(default_factory=list)  # AoI repairs and choices made for the user
    failureKind: FailureKind | None = None
    transportStates: dict[str, TransportStatus] = Field(default_factory=dict)  # by index, as text
    definitionId: UUID | None = None  # the export definition this task is a run of
    archive: ArchiveInfo | None = None  # set when the export was archived (kept after a restore)
    pausedBy: PausedBy | None = None  # PAUSED: by its owner or by the operator-wide pause

    def all_webhooks(self) -> list[Webhook]:
        seen: set[tuple[str, tuple[str, ...]]] = set()
        hooks: list[Webhook] = []
        for hook in [*self.request.webhooks, *self.extraWebhooks]:
            key = (str(hook.url), tuple(sorted(hook.events)))
            if key not in seen:
                seen.add(key)
                hooks.append(hook)
        return hooks

    @property
    def roi(self) -> RoiFeatureCollection:
        return self.request.roi_collection()


class ExportTask(BaseModel):
    """The API view of a task (``POST``/``GET /export-tasks``): the request echoed plus its state."""

    id: UUID
    status: TaskStatus
    progress: int
    catalogRecordID: UUID | None = None
    domain: Domain
    ROI: dict[str, Any]  # the request's FeatureCollection as sent (absent members stay absent)
    artifactCRS: str
    format: ExportFormat = ExportFormat.GPKG
    packer: Packer = Packer.NONE
    maxPartSize: int | None = None
    notes: list[str] = Field(default_factory=list)  # how the AoI was repaired, which CRS was chosen...
    description: str
    keywords: dict[str, Any]
    parameters: dict[str, Any]
    webhooks: list[Webhook]
    estimatedSize: int | None = None
    estimatedTime: float | None = None
    artifacts: list[Artifact] = Field(default_factory=list)
    createdAt: datetime
    expiredAt: datetime | None = None
    finishedAt: datetime | None = None
    errorReason: str | None = None
    failureKind: FailureKind | None = None
    isDuplicated: bool = False
    dedupe: DedupeMatch | None = None
    transports: list[TransportStatus] = Field(default_factory=list, description="each transport's state")
    definitionId: UUID | None = Field(None, description="the export definition this task is a run of")
    archive: ArchiveInfo | None = Field(
        None,
        description="ARCHIVED: the archive's storage class and a restore's progress; kept after a restore",
    )
    pausedBy: PausedBy | None = Field(None, description="PAUSED: by its owner, or by the operator-wide pause")
    webhookDeliveries: list[WebhookDelivery] | None = Field(
        None, description="Each webhook's latest delivery outcome; only on a single task's GET, not in lists"
    )
