"""Builds the adapters and services a function needs from its settings, once per cold start.

Each builder takes the narrowest settings group that holds what it reads (so mypy checks that a function's
settings model has it) and builds only its own adapters; every client comes from the shared session in
:mod:`geoexport.aws`. Nothing here is built lazily behind the handler's back: a function that lacks a
setting fails at cold start, not at its first request. Each builder imports the modules it builds from,
so a function's cold import holds only what its handler uses (create_task no longer imports the feature
repository's JSON Schema machinery, for one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from geoexport import aws
from geoexport.settings import (
    AbortSettings,
    ArchiveSettings,
    CatalogSettings,
    CatalogUpdateSettings,
    ClientsSettings,
    DefinitionSettings,
    DeliverySettings,
    ExportEventSettings,
    ExportRequestSettings,
    ExportsSettings,
    FeatureFilesBucketSettings,
    FeatureFilesSettings,
    FeatureRequestSettings,
    FeaturesSettings,
    FeatureWriterSettings,
    SigningSettings,
    TaskActionSettings,
    TaskLogSettings,
    TaskServiceSettings,
    TasksSettings,
    TokenSettings,
    TransportQueueSettings,
    TransportSettings,
    ViewSettings,
    WebhookSettings,
    WorkflowSettings,
)

if TYPE_CHECKING:  # the builders import what they build: a function imports only what it uses
    from geoexport.auth.clients import ClientRepository
    from geoexport.auth.service import AuthService
    from geoexport.catalog.repository import CatalogRepository
    from geoexport.catalog.update import CatalogUpdates
    from geoexport.definitions.service import DefinitionService
    from geoexport.features.bus import EventBusPublisher, SqsTaskQueue
    from geoexport.features.feature import Feature
    from geoexport.features.repository import RequestRepository
    from geoexport.features.requests import FeatureRequests
    from geoexport.features.service import FeatureService, ModelService
    from geoexport.features.shares import FileShares
    from geoexport.notify.delivery import Deliveries, RetryPolicy, Views
    from geoexport.notify.records import DeliveryRecords
    from geoexport.notify.webhooks import WebhookSender
    from geoexport.storage.s3 import ObjectStore, S3UrlReader
    from geoexport.tasks.abort import AbortService
    from geoexport.tasks.archive import Archiver, ArchiveService
    from geoexport.tasks.log import StepLog
    from geoexport.tasks.pause import OperatorPauses, PauseService
    from geoexport.tasks.prepare import Limits
    from geoexport.tasks.repository import ClientQuota, TaskLogRepository, TaskRepository
    from geoexport.tasks.requests import ExportRequests
    from geoexport.tasks.service import TaskService
    from geoexport.tasks.transports import TransportRetries, Transports
    from geoexport.tasks.views import TaskViews
    from geoexport.tasks.workflow import StepFunctionsWorkflow


def feature_file_reader(settings: FeatureFilesBucketSettings) -> S3UrlReader:
    """The features' stored files, read by URL (a VECTOR export with ``files`` copies them)."""
    from geoexport.storage.s3 import S3UrlReader

    return S3UrlReader(aws.s3(settings), {settings.feature_files_bucket})


def exports_store(settings: ExportsSettings) -> ObjectStore:
    from geoexport.storage.s3 import ObjectStore

    return ObjectStore(aws.s3(settings), settings.exports_bucket)


def task_repository(settings: TasksSettings) -> TaskRepository:
    from geoexport.tasks.repository import TaskRepository

    return TaskRepository(
        aws.dynamodb(settings), settings.tasks_table, settings.dedupe_table, settings.counters_table
    )


def catalog_repository(settings: CatalogSettings) -> CatalogRepository:
    from geoexport.catalog.repository import CatalogRepository

    return CatalogRepository(aws.dynamodb(settings), settings.catalog_table)


def limits(settings: TasksSettings) -> Limits:
    from geoexport.tasks.prepare import Limits

    return Limits(
        download_url_ttl_seconds=settings.download_url_ttl_seconds,
        retention_days=settings.retention_days,
        storage_quota_bytes=settings.storage_quota_bytes,
        max_roi_vertices=settings.max_roi_vertices,
        max_export_tiles=settings.max_export_tiles,
        max_export_bytes=settings.max_export_bytes,
        allow_loopback_webhooks=settings.webhook_allow_loopback,
        client_storage_quota_bytes=settings.client_storage_quota_bytes,
        client_max_concurrent_exports=settings.client_max_concurrent_exports,
        max_lifetime_days=settings.max_lifetime_days,
        fanout=settings.fanout,
        max_invocation_seconds=settings.max_invocation_seconds,
    )


def workflow(settings: WorkflowSettings) -> StepFunctionsWorkflow:
    from geoexport.tasks.workflow import StepFunctionsWorkflow

    return StepFunctionsWorkflow(aws.stepfunctions(settings), settings.state_machine_arn)


def task_views(settings: ViewSettings) -> TaskViews:
    from geoexport.tasks.views import TaskViews

    return TaskViews(
        task_repository(settings),
        exports_store(settings),
        limits(settings),
        webhook_secrets(settings),
        deliveries=delivery_records(settings),
    )


def delivery_records(settings: TasksSettings) -> DeliveryRecords:
    from geoexport.notify.records import DeliveryRecords

    return DeliveryRecords(aws.dynamodb(settings), settings.deliveries_table)


def task_service(settings: TaskServiceSettings) -> TaskService:
    from geoexport.tasks.service import TaskService
    from geoexport.tasks.workflow import LambdaGeometry

    return TaskService(
        tasks=task_repository(settings),
        catalog=catalog_repository(settings),
        workflow=workflow(settings),
        store=exports_store(settings),
        limits=limits(settings),
        geometry=LambdaGeometry(aws.lambda_(settings), settings.geometry_function),
        secrets=webhook_secrets(settings),
        quotas=client_quotas(settings),
    )


def abort_service(settings: AbortSettings) -> AbortService:
    from geoexport.tasks.abort import AbortService
    from geoexport.tasks.workflow import LambdaNotifier

    return AbortService(
        tasks=task_repository(settings),
        workflow=workflow(settings),
        store=exports_store(settings),
        limits=limits(settings),
        notifier=LambdaNotifier(aws.lambda_(settings), settings.notify_function),
    )


def pause_service(settings: AbortSettings) -> PauseService:
    from geoexport.tasks.pause import PauseService

    return PauseService(
        tasks=task_repository(settings),
        workflow=workflow(settings),
        store=exports_store(settings),
        limits=limits(settings),
    )


def operator_pauses(settings: AbortSettings) -> OperatorPauses:
    from geoexport.tasks.pause import OperatorPauses

    return OperatorPauses(task_repository(settings), pause_service(settings))


def archiver(settings: ArchiveSettings) -> Archiver:
    from geoexport.tasks.archive import ArchivePolicy, Archiver

    policy = ArchivePolicy(
        storage_class=settings.archive_storage_class,
        restore_tier=settings.archive_restore_tier,
        retention_days=settings.retention_days,
    )
    return Archiver(task_repository(settings), exports_store(settings), policy)


def archive_service(settings: AbortSettings) -> ArchiveService:
    from geoexport.tasks.archive import ArchiveService

    return ArchiveService(
        tasks=task_repository(settings),
        archiver=archiver(settings),
        store=exports_store(settings),
        limits=limits(settings),
    )


def client_repository(settings: ClientsSettings) -> ClientRepository:
    from geoexport.auth.clients import ClientRepository

    return ClientRepository(aws.dynamodb(settings), settings.clients_table)


def client_enabled(settings: ClientsSettings) -> Callable[[str], bool]:
    """Whether a client exists and is enabled, now (doors that act for an owner without its token)."""
    clients = client_repository(settings)

    def enabled(client_id: str) -> bool:
        client = clients.get(client_id)
        return client is not None and not client.disabled

    return enabled


def webhook_secrets(settings: ClientsSettings) -> Callable[[str], str | None]:
    """Owner -> the client's webhook signing secret (None for an unknown owner: sent unsigned)."""
    clients = client_repository(settings)

    def secret(owner: str) -> str | None:
        client = clients.get(owner)
        return client.webhook_secret if client else None

    return secret


def client_quotas(settings: ViewSettings) -> Callable[[str], ClientQuota]:
    """Owner -> its quotas: its own where its client record sets them, else the deployment's defaults."""
    from geoexport.tasks.repository import ClientQuota

    clients = client_repository(settings)

    def quota(owner: str) -> ClientQuota:
        client = clients.get(owner)
        storage = client.storage_quota_bytes if client else None
        slots = client.max_concurrent_exports if client else None
        return ClientQuota(
            storage_bytes=settings.client_storage_quota_bytes if storage is None else storage,
            concurrent_exports=settings.client_max_concurrent_exports if slots is None else slots,
        )

    return quota


def webhook_sender(settings: WebhookSettings) -> WebhookSender:
    """One attempt per call: retries go through the retry queue, so no Lambda sleeps on a receiver."""
    from geoexport.notify.webhooks import WebhookSender

    return WebhookSender(
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_loopback=settings.webhook_allow_loopback,
        https_only=settings.webhook_https_only,
    )


def retry_policy(settings: WebhookSettings) -> RetryPolicy:
    from geoexport.notify.delivery import RetryPolicy

    return RetryPolicy(
        base_seconds=settings.webhook_retry_base_seconds,
        max_delay_seconds=settings.webhook_retry_max_delay_seconds,
        window_seconds=settings.webhook_retry_window_seconds,
        safety_net_seconds=settings.webhook_safety_net_seconds,
    )


def deliveries(settings: DeliverySettings, views: Views | None = None) -> Deliveries:
    """Webhook delivery with its retry queue, signed with each owner's secret."""
    from geoexport.notify.delivery import Deliveries
    from geoexport.notify.queue import SqsDeliveryQueue

    clock = functools.partial(datetime.now, UTC)
    queue = SqsDeliveryQueue(
        aws.sqs(settings), settings.webhook_queue_url, settings.webhook_dead_letter_url, clock
    )
    return Deliveries(
        task_repository(settings),
        delivery_records(settings),
        views or task_views(settings),
        webhook_sender(settings),
        queue,
        retry_policy(settings),
        clock,
    )


def signing_key(settings: SigningSettings) -> Callable[[], bytes]:
    """The JWT signing key from Secrets Manager, fetched on first use and kept for the container's life."""
    secrets = aws.secretsmanager(settings)

    @functools.cache
    def key() -> bytes:
        value: str = secrets.get_secret_value(SecretId=settings.signing_key_secret)["SecretString"]
        return value.encode()

    return key


def auth_service(settings: SigningSettings) -> AuthService:
    """Verifies tokens (the authorizer); :func:`token_service` issues them."""
    from geoexport.auth.service import AuthService

    return AuthService(client_repository(settings), signing_key(settings), settings.token_lifetime_seconds)


def token_service(settings: TokenSettings) -> AuthService:
    """Issues tokens, with failed attempts counted per client id and source address."""
    from geoexport.auth.attempts import Attempts, Brake
    from geoexport.auth.service import AuthService

    attempts = Attempts(
        aws.dynamodb(settings),
        settings.counters_table,
        client_brake=Brake("client_id", threshold=settings.client_lock_threshold),
        source_brake=Brake("source", threshold=settings.source_lock_threshold),
    )
    return AuthService(
        client_repository(settings), signing_key(settings), settings.token_lifetime_seconds, attempts=attempts
    )


def model_service(settings: FeaturesSettings) -> ModelService:
    from geoexport.features.repository import ModelRepository
    from geoexport.features.service import ModelService

    return ModelService(ModelRepository(aws.dynamodb(settings), settings.features_table))


def file_shares(settings: FeatureFilesSettings) -> FileShares:
    """Stored files counted in their owner's ledger, against its own quota or the default."""
    from geoexport.features.shares import FileShares

    clients = client_repository(settings)

    def quota(owner: str) -> int:
        client = clients.get(owner)
        own = client.storage_quota_bytes if client else None
        return settings.client_storage_quota_bytes if own is None else own

    return FileShares(aws.dynamodb(settings), settings.counters_table, quota)


def feature_writer(settings: FeatureWriterSettings) -> FeatureService:
    """Features as the API, the messaging API and the file check write them: stored files counted against
    the owners' quotas, and each write announced (FeaturesChanged) for the definitions that follow them."""
    from geoexport.features.bus import EventBusPublisher
    from geoexport.features.journal import SOURCE, ChangeAnnouncer

    announcer = ChangeAnnouncer(EventBusPublisher(aws.events(settings), settings.export_event_bus, SOURCE))
    return feature_service(settings, file_shares(settings), announcer)


def feature_service(
    settings: FeaturesSettings,
    shares: FileShares | None = None,
    announce: Callable[[str, list[Feature]], None] | None = None,
) -> FeatureService:
    """Features with their files; ``shares`` counts stored files against the owners' quotas (the API,
    the messaging API and the file check do; a VECTOR export only reads)."""
    from geoexport.features.repository import FeatureIndex, FeatureRepository
    from geoexport.features.service import FeatureService
    from geoexport.storage.s3 import S3FileStorage

    db = aws.dynamodb(settings)
    return FeatureService(
        FeatureRepository(db, settings.features_table),
        model_service(settings),
        settings.tenant,
        FeatureIndex(db, settings.features_table),
        files=S3FileStorage(aws.s3(settings), settings.feature_files_bucket, settings.file_storage_id),
        upload_ttl_seconds=settings.upload_url_ttl_seconds,
        shares=shares,
        announce=announce,
    )


def feature_requests(settings: FeatureRequestSettings) -> FeatureRequests:
    """The messaging API: the same feature service, plus where outcomes and unreadable messages go."""
    from geoexport.features.bus import EventBusPublisher, SqsDeadLetters
    from geoexport.features.requests import FeatureRequests

    clients = client_repository(settings)
    return FeatureRequests(
        feature_writer(settings),
        request_reader(settings),
        EventBusPublisher(aws.events(settings), settings.feature_event_bus),
        SqsDeadLetters(aws.sqs(settings), settings.feature_request_dead_letter_url),
        client_exists=lambda client_id: clients.get(client_id) is not None,
    )


def export_requests(settings: ExportRequestSettings) -> ExportRequests:
    """Exports requested by events: the API's create path, answers kept (idempotency) and published."""
    from geoexport.features.bus import EventBusPublisher, SqsDeadLetters
    from geoexport.tasks.repository import RequestAnswers
    from geoexport.tasks.requests import SOURCE, ExportRequests

    return ExportRequests(
        task_service(settings),
        RequestAnswers(aws.dynamodb(settings), settings.dedupe_table),
        EventBusPublisher(aws.events(settings), settings.export_event_bus, SOURCE),
        SqsDeadLetters(aws.sqs(settings), settings.export_request_dead_letter_url),
        client_enabled=client_enabled(settings),
    )


def status_events(settings: ExportEventSettings) -> EventBusPublisher:
    """Where every task status change is published (ExportTaskStatusChanged)."""
    from geoexport.features.bus import EventBusPublisher
    from geoexport.tasks.requests import SOURCE

    return EventBusPublisher(aws.events(settings), settings.export_event_bus, SOURCE)


def task_log(settings: TaskLogSettings) -> TaskLogRepository:
    from geoexport.tasks.repository import TaskLogRepository

    return TaskLogRepository(aws.dynamodb(settings), settings.task_log_table)


def step_log(settings: TaskLogSettings) -> StepLog:
    """What a pipeline step writes about its runs (start or retry, finish with duration, failure)."""
    from geoexport.tasks.log import StepLog

    return StepLog(task_log(settings))


def request_reader(settings: FeaturesSettings) -> RequestRepository:
    from geoexport.features.repository import RequestRepository

    return RequestRepository(aws.dynamodb(settings), settings.features_table)


def transport_queue(settings: TransportQueueSettings) -> SqsTaskQueue:
    from geoexport.features.bus import SqsTaskQueue

    return SqsTaskQueue(aws.sqs(settings), settings.transport_queue_url)


def transport_retries(settings: TaskActionSettings) -> TransportRetries:
    from geoexport.tasks.transports import TransportRetries

    return TransportRetries(
        task_repository(settings), transport_queue(settings), clock=functools.partial(datetime.now, UTC)
    )


def transports(settings: TransportSettings) -> Transports:
    """Deliveries to buckets (copies read back and checked) and by email (SES), states on the task."""
    from geoexport.notify.mail import SesMailer
    from geoexport.storage.s3 import BucketCopier
    from geoexport.tasks.transports import Transports

    return Transports(
        task_repository(settings),
        task_log(settings),
        BucketCopier(aws.s3(settings), settings.exports_bucket),
        SesMailer(aws.ses(settings), settings.mail_from),
        exports_store(settings),
        bucket_pattern=settings.transport_bucket_pattern,
        link_ttl_seconds=settings.download_url_ttl_seconds,
        clock=functools.partial(datetime.now, UTC),
    )


def definition_service(settings: DefinitionSettings) -> DefinitionService:
    """Definitions on the task service of the API's create path, with schedules in EventBridge Scheduler."""
    from datetime import timedelta

    from geoexport.definitions.repository import DefinitionRepository
    from geoexport.definitions.schedules import SchedulerSchedules
    from geoexport.definitions.service import DefinitionService

    return DefinitionService(
        DefinitionRepository(aws.dynamodb(settings), settings.definitions_table),
        SchedulerSchedules(
            aws.scheduler(settings),
            settings.schedule_group,
            settings.definition_run_queue_arn,
            settings.scheduler_role_arn,
        ),
        task_service(settings),
        owner_enabled=client_enabled(settings),
        clock=functools.partial(datetime.now, UTC),
        change_window=timedelta(seconds=settings.source_change_window_seconds),
    )


def catalog_updates(settings: CatalogUpdateSettings) -> CatalogUpdates:
    """New sources for records, described by GDAL from the sources bucket (the raster layer's code)."""
    from uuid import UUID

    from geoexport.catalog.ingest import describe_record
    from geoexport.catalog.update import SOURCE, CatalogUpdates
    from geoexport.features.bus import EventBusPublisher
    from geoexport.models.catalog import CatalogRecord, SourceLocation

    def describe(uri: str, record_id: UUID, name: str, location: SourceLocation, text: str) -> CatalogRecord:
        from geoexport.raster.source import gdal_path  # GDAL loads on the first update, not at cold start

        return describe_record(
            gdal_path(uri), record_id, name, location, text, settings.gdal_s3_options(), measure_costs=False
        )

    return CatalogUpdates(
        catalog_repository(settings),
        describe,
        settings.sources_bucket,
        EventBusPublisher(aws.events(settings), settings.export_event_bus, SOURCE),
        clock=functools.partial(datetime.now, UTC),
    )
