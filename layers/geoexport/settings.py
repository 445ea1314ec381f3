"""Settings, read once per cold start from the function's environment.

Domain code never reads ``os.environ``. Each ``functions/<name>/app.py`` declares its own settings model,
made of the groups below for the adapters it builds, and calls ``from_environ()`` at import time: a
function whose environment lacks a name it needs fails its cold start with a validation error naming
that variable (never an empty-string default and a silent fallback at the first request).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from geoexport.pipeline.items import FanOut
    from geoexport.pipeline.vector import SelectLimits

#: A name the function cannot work without (a table, a bucket, an ARN): present and not empty.
Required = Annotated[str, Field(min_length=1)]


class AwsSettings(BaseModel):
    """Where AWS is (an emulator locally): every function has these."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    region: str = Field("us-east-1", alias="AWS_REGION")
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            if alias in env and env[alias] != "":
                values[alias] = env[alias]
        if "AWS_REGION" not in values and env.get("AWS_DEFAULT_REGION"):
            values["AWS_REGION"] = env["AWS_DEFAULT_REGION"]
        return cls.model_validate(values)

    def gdal_s3_options(self) -> dict[str, str]:
        """GDAL config so /vsis3/ reaches the same S3 endpoint boto3 uses (an emulator, locally)."""
        if not self.aws_endpoint_url:
            return {}
        parts = urlsplit(self.aws_endpoint_url)
        return {
            "AWS_S3_ENDPOINT": parts.netloc,
            "AWS_HTTPS": "YES" if parts.scheme == "https" else "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
        }


class TasksSettings(AwsSettings):
    """The tasks table with its dedupe claims and storage ledger, and the limits that apply to tasks."""

    tasks_table: Required = Field(alias="TASKS_TABLE")
    dedupe_table: Required = Field(alias="DEDUPE_TABLE")
    counters_table: Required = Field(alias="COUNTERS_TABLE")
    deliveries_table: Required = Field(alias="DELIVERIES_TABLE")  # webhook outcomes, one item per hook
    retention_days: int = Field(14, ge=1, le=3650, alias="EXPORT_RETENTION_DAYS")
    download_url_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, alias="DOWNLOAD_URL_TTL_SECONDS")
    storage_quota_bytes: int = Field(100 * 1024**3, ge=0, alias="STORAGE_QUOTA_BYTES")
    max_roi_vertices: int = Field(10_000, ge=4, alias="MAX_ROI_VERTICES")
    max_export_tiles: int = Field(2_000_000, ge=1, alias="MAX_EXPORT_TILES")
    max_export_bytes: int = Field(9 * 1024**3, ge=1, alias="MAX_EXPORT_BYTES")  # the Package scratch's share
    webhook_allow_loopback: bool = Field(False, alias="WEBHOOK_ALLOW_LOOPBACK")  # local development only
    client_storage_quota_bytes: int = Field(20 * 1024**3, ge=0, alias="CLIENT_STORAGE_QUOTA_BYTES")
    client_max_concurrent_exports: int = Field(10, ge=1, alias="CLIENT_MAX_CONCURRENT_EXPORTS")
    max_lifetime_days: int = Field(90, ge=1, le=3650, alias="EXPORT_MAX_LIFETIME_DAYS")
    # Big GeoPackage exports fan out over a Distributed Map (geoexport.pipeline.fanout).
    fanout_tiles: int = Field(20_000, ge=1, alias="FANOUT_TILES")
    fanout_item_tiles: int = Field(10_000, ge=16, alias="FANOUT_ITEM_TILES")
    fanout_concurrency: int = Field(10, ge=1, le=1000, alias="FANOUT_CONCURRENCY")
    fanout_tolerated_percent: float = Field(5.0, ge=0, le=100, alias="FANOUT_TOLERATED_FAILURE_PERCENT")
    max_invocation_seconds: float = Field(600.0, gt=0, le=900, alias="MAX_INVOCATION_SECONDS")

    @property
    def fanout(self) -> FanOut:
        from geoexport.pipeline.items import FanOut

        return FanOut(
            self.fanout_tiles, self.fanout_item_tiles, self.fanout_concurrency, self.fanout_tolerated_percent
        )


class CatalogSettings(AwsSettings):
    catalog_table: Required = Field(alias="CATALOG_TABLE")


class ExportsSettings(AwsSettings):
    exports_bucket: Required = Field(alias="EXPORTS_BUCKET")


class WorkflowSettings(AwsSettings):
    state_machine_arn: Required = Field(alias="STATE_MACHINE_ARN")


class GeometrySettings(AwsSettings):
    """The geometry function: GEOS repairs and CRS checks for the API functions."""

    geometry_function: Required = Field(alias="GEOMETRY_FUNCTION_NAME")


class NotifierSettings(AwsSettings):
    notify_function: Required = Field(alias="NOTIFY_FUNCTION_NAME")


class ClientsSettings(AwsSettings):
    clients_table: Required = Field(alias="CLIENTS_TABLE")


class SigningSettings(ClientsSettings):
    signing_key_secret: Required = Field(alias="SIGNING_KEY_SECRET_ARN")
    token_lifetime_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, alias="TOKEN_LIFETIME_SECONDS")


class TokenSettings(SigningSettings):
    """The token endpoint: it also counts failed attempts (in the counters table) to lock out guessers."""

    counters_table: Required = Field(alias="COUNTERS_TABLE")
    client_lock_threshold: int = Field(5, ge=1, alias="AUTH_CLIENT_LOCK_THRESHOLD")
    source_lock_threshold: int = Field(50, ge=1, alias="AUTH_SOURCE_LOCK_THRESHOLD")


class WebhookSettings(TasksSettings, ClientsSettings):
    """Callback delivery: the retry queue, its dead letters, and the sender's bounds."""

    webhook_queue_url: Required = Field(alias="WEBHOOK_QUEUE_URL")
    webhook_dead_letter_url: Required = Field(alias="WEBHOOK_DEAD_LETTER_URL")
    webhook_timeout_seconds: float = Field(15.0, gt=0, le=60, alias="WEBHOOK_TIMEOUT_SECONDS")
    webhook_https_only: bool = Field(False, alias="WEBHOOK_HTTPS_ONLY")  # the template sets it on AWS
    webhook_retry_base_seconds: float = Field(30.0, gt=0, alias="WEBHOOK_RETRY_BASE_SECONDS")
    webhook_retry_max_delay_seconds: float = Field(3600.0, gt=0, alias="WEBHOOK_RETRY_MAX_DELAY_SECONDS")
    webhook_retry_window_seconds: float = Field(25 * 3600.0, gt=0, alias="WEBHOOK_RETRY_WINDOW_SECONDS")
    webhook_safety_net_seconds: float = Field(180.0, ge=0, alias="WEBHOOK_SAFETY_NET_SECONDS")


class FeaturesSettings(AwsSettings):
    """The feature repository (seed 004) and its stored files."""

    features_table: Required = Field(alias="FEATURES_TABLE")
    feature_files_bucket: Required = Field(alias="FEATURE_FILES_BUCKET")
    tenant: str = Field("geoexport", pattern=r"^[A-Za-z0-9_-]+$", alias="FEATURE_TENANT")  # in feature URNs
    file_storage_id: str = Field("geoexport-s3", alias="FILE_STORAGE_ID")  # seed 004's pluginBusinessId
    upload_url_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, alias="UPLOAD_URL_TTL_SECONDS")


class FeatureFilesSettings(FeaturesSettings, ClientsSettings):
    """Where stored files are counted: the owner's ledger (counters table) against its storage quota."""

    counters_table: Required = Field(alias="COUNTERS_TABLE")
    client_storage_quota_bytes: int = Field(20 * 1024**3, ge=0, alias="CLIENT_STORAGE_QUOTA_BYTES")


class FeatureWriterSettings(FeatureFilesSettings):
    """Writing features: where their changes are announced (FeaturesChanged on the exports bus)."""

    export_event_bus: Required = Field(alias="EXPORT_EVENT_BUS")


class FeatureRequestSettings(FeatureWriterSettings):
    """The messaging API: where outcomes are published and unreadable messages go."""

    feature_event_bus: Required = Field(alias="FEATURE_EVENT_BUS")
    feature_request_dead_letter_url: Required = Field(alias="FEATURE_REQUEST_DEAD_LETTER_URL")


class StepSettings(AwsSettings):
    """What every pipeline step reads besides its adapters."""

    render_threads: int = Field(0, ge=0, le=64, alias="RENDER_THREADS")
    vector_part_bytes: int = Field(100 * 1024**2, ge=256 * 1024, alias="VECTOR_PART_BYTES")  # GPKG split size
    faults: str = Field("", alias="GEOEXPORT_FAULTS")  # fault injection, see geoexport.pipeline.faults
    # VECTOR exports: Clip reads the index a page at a time and ends an invocation after this many
    # seconds (the state machine calls it again); at most this many features per export.
    vector_select_seconds: float = Field(200.0, ge=0, le=280, alias="VECTOR_SELECT_SECONDS")
    vector_page_features: int = Field(5000, ge=1, le=10_000, alias="VECTOR_PAGE_FEATURES")
    vector_max_features: int = Field(2_000_000, ge=1, alias="VECTOR_MAX_FEATURES")

    @property
    def threads(self) -> int:
        return self.render_threads or max(1, os.cpu_count() or 1)


class TaskLogSettings(AwsSettings):
    """Task logs (GET /export-tasks/{id}/log): what happened to each task, step by step."""

    task_log_table: Required = Field(alias="TASK_LOG_TABLE")


class PipelineSettings(StepSettings, TasksSettings, ExportsSettings, TaskLogSettings):
    """What every pipeline step reads: its task, the exports bucket, its log, threads and fault injection."""

    @property
    def select_limits(self) -> SelectLimits:
        """How a VECTOR export's Clip paces and bounds its selection; copied files may fill half the
        Package scratch's share (the packer writes them again into the bundle)."""
        from geoexport.pipeline.vector import SelectLimits

        return SelectLimits(
            self.vector_select_seconds,
            self.vector_page_features,
            self.vector_max_features,
            self.max_export_bytes // 2,
        )


class FeatureFilesBucketSettings(AwsSettings):
    """Where the features' stored files are (a VECTOR export with ``files`` copies them)."""

    feature_files_bucket: Required = Field(alias="FEATURE_FILES_BUCKET")


class PackageSettings(PipelineSettings, FeatureFilesBucketSettings):
    """The Package step: a pipeline step that may also copy features' stored files."""


class ClcSettings(AwsSettings):
    """The CLC+ Backbone facade: which catalog record and model stand behind its products."""

    clc_raster_product: str = Field("", alias="CLC_RASTER_PRODUCT")  # catalog record name behind CLC+ orders
    clc_crs: str = Field("3035", alias="CLC_CRS")
    clc_vector_model: str = Field("", alias="CLC_VECTOR_MODEL")  # behind CLC+ Vector orders ("": all models)


class ReconcileSettings(AwsSettings):
    reconcile_grace_seconds: float = Field(300.0, ge=0, alias="RECONCILE_GRACE_SECONDS")


class ViewSettings(TasksSettings, ExportsSettings, ClientsSettings):
    """Reading tasks: the table, links to the exports, and the owner's webhook secret."""


class ArchiveSettings(TasksSettings, ExportsSettings):
    """Archiving and restoring exports (the task-control API and the expiry sweep)."""

    archive_storage_class: Literal["GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "STANDARD_IA"] = Field(
        "GLACIER", alias="ARCHIVE_STORAGE_CLASS"
    )
    archive_restore_tier: Literal["Expedited", "Standard", "Bulk"] = Field(
        "Standard", alias="ARCHIVE_RESTORE_TIER"
    )


class AbortSettings(ArchiveSettings, WorkflowSettings, NotifierSettings):
    """Task control: aborting (the task, its workflow, the Notify function that cleans up after it),
    pausing and resuming, archiving and restoring."""


class DeliverySettings(WebhookSettings, ViewSettings):
    """Callbacks: the queue and sender, and the task views whose links go into the bodies."""


class TaskServiceSettings(ViewSettings, CatalogSettings, WorkflowSettings, GeometrySettings):
    """What creating and reading export tasks needs."""


class ExportEventSettings(AwsSettings):
    """The exports bus: export requests come in by it, their answers and every status change go out on it."""

    export_event_bus: Required = Field(alias="EXPORT_EVENT_BUS")


class ExportRequestSettings(TaskServiceSettings, ExportEventSettings):
    """Exports requested by events: the API's create path, plus where answers and unreadable events go."""

    export_request_dead_letter_url: Required = Field(alias="EXPORT_REQUEST_DEAD_LETTER_URL")


class TransportQueueSettings(AwsSettings):
    """Where tasks whose transports are due are queued (TaskChanges, and the retry route)."""

    transport_queue_url: Required = Field(alias="TRANSPORT_QUEUE_URL")


class TransportSettings(ViewSettings, TaskLogSettings):
    """Delivering transports: where copies may go, who mail comes from, how long links in it work."""

    transport_bucket_pattern: Required = Field(alias="TRANSPORT_BUCKET_PATTERN")
    mail_from: Required = Field(alias="MAIL_FROM")


class TaskActionSettings(DeliverySettings, TransportQueueSettings):
    """POST /export-tasks/{id}/{action}: callbacks:replay and transports:retry."""


class CatalogUpdateSettings(CatalogSettings, ExportEventSettings):
    """A record's new source: the sources bucket it must be in, and the bus CatalogRecordUpdated goes on."""

    sources_bucket: Required = Field(alias="SOURCES_BUCKET")


class DefinitionSettings(TaskServiceSettings):
    """Export definitions: their table, where their schedules go, and the window that coalesces changes."""

    definitions_table: Required = Field(alias="DEFINITIONS_TABLE")
    schedule_group: Required = Field(alias="SCHEDULE_GROUP")
    definition_run_queue_arn: Required = Field(alias="DEFINITION_RUN_QUEUE_ARN")
    scheduler_role_arn: Required = Field(alias="SCHEDULER_ROLE_ARN")
    source_change_window_seconds: int = Field(300, ge=1, le=86400, alias="SOURCE_CHANGE_WINDOW_SECONDS")


class TaskChangeSettings(DeliverySettings, ExportEventSettings, TaskLogSettings, TransportQueueSettings):
    """Reacting to stored task changes: callbacks, status events on the exports bus, the task's log, and
    queueing the transports of a task that just finished."""


class Settings(
    CatalogUpdateSettings,
    DefinitionSettings,
    ExportRequestSettings,
    TaskChangeSettings,
    TaskActionSettings,
    TransportSettings,
    TaskServiceSettings,
    AbortSettings,
    DeliverySettings,
    SigningSettings,
    FeatureRequestSettings,
    PipelineSettings,
    ClcSettings,
    ReconcileSettings,
):
    """Every group at once: the whole stack's settings, for the local stack's tooling and tests."""
