"""Builds the adapters and services a function needs from its settings, once per cold start."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from geoexport import aws
from geoexport.auth.clients import ClientRepository
from geoexport.auth.service import AuthService
from geoexport.catalog.repository import CatalogRepository
from geoexport.features.bus import EventBusPublisher, SqsDeadLetters
from geoexport.features.repository import (
    FeatureIndex,
    FeatureRepository,
    ModelRepository,
    RequestRepository,
)
from geoexport.features.requests import FeatureRequests
from geoexport.features.service import FeatureService, ModelService
from geoexport.notify.delivery import Deliveries, RetryPolicy
from geoexport.notify.queue import SqsDeliveryQueue
from geoexport.notify.webhooks import WebhookSender
from geoexport.settings import Settings
from geoexport.storage.s3 import ObjectStore, S3FileStorage
from geoexport.tasks.repository import TaskRepository
from geoexport.tasks.service import Limits, TaskService
from geoexport.tasks.workflow import LambdaGeometry, LambdaNotifier, StepFunctionsWorkflow


def exports_store(settings: Settings) -> ObjectStore:
    return ObjectStore(aws.client("s3", settings), settings.exports_bucket)


def task_repository(settings: Settings) -> TaskRepository:
    return TaskRepository(
        aws.client("dynamodb", settings), settings.tasks_table, settings.dedupe_table, settings.counters_table
    )


def catalog_repository(settings: Settings) -> CatalogRepository:
    return CatalogRepository(aws.client("dynamodb", settings), settings.catalog_table)


def limits(settings: Settings) -> Limits:
    return Limits(
        download_url_ttl_seconds=settings.download_url_ttl_seconds,
        retention_days=settings.retention_days,
        storage_quota_bytes=settings.storage_quota_bytes,
        max_roi_vertices=settings.max_roi_vertices,
        max_export_tiles=settings.max_export_tiles,
        max_export_bytes=settings.max_export_bytes,
    )


def task_service(settings: Settings) -> TaskService:
    notifier = (
        LambdaNotifier(aws.client("lambda", settings), settings.notify_function)
        if settings.notify_function
        else None
    )
    return TaskService(
        tasks=task_repository(settings),
        catalog=catalog_repository(settings),
        workflow=StepFunctionsWorkflow(aws.client("stepfunctions", settings), settings.state_machine_arn),
        store=exports_store(settings),
        limits=limits(settings),
        notifier=notifier,
        geometry=(
            LambdaGeometry(aws.client("lambda", settings), settings.geometry_function)
            if settings.geometry_function
            else None
        ),
        secrets=webhook_secrets(settings),
    )


def webhook_secrets(settings: Settings) -> Callable[[str], str | None]:
    """Owner -> the client's webhook signing secret (None for an unknown owner: sent unsigned)."""
    if not settings.clients_table:
        return lambda owner: None
    clients = client_repository(settings)

    def secret(owner: str) -> str | None:
        client = clients.get(owner)
        return client.webhook_secret if client else None

    return secret


def webhook_sender(settings: Settings) -> WebhookSender:
    """One attempt per call: retries go through the retry queue, so no Lambda sleeps on a receiver."""
    return WebhookSender(
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_loopback=settings.webhook_allow_loopback,
        https_only=settings.webhook_https_only,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        base_seconds=settings.webhook_retry_base_seconds,
        max_delay_seconds=settings.webhook_retry_max_delay_seconds,
        window_seconds=settings.webhook_retry_window_seconds,
        safety_net_seconds=settings.webhook_safety_net_seconds,
    )


def deliveries(settings: Settings, views: TaskService | None = None) -> Deliveries:
    """Webhook delivery with its retry queue, signed with each owner's secret."""
    clock = functools.partial(datetime.now, UTC)
    queue = SqsDeliveryQueue(
        aws.client("sqs", settings), settings.webhook_queue_url, settings.webhook_dead_letter_url, clock
    )
    return Deliveries(
        task_repository(settings),
        views or task_service(settings),
        webhook_sender(settings),
        queue,
        retry_policy(settings),
        clock,
    )


def step_tasks(settings: Settings) -> Any:
    """The task store for the pipeline steps: progress at step boundaries also fires TASK_PROGRESS."""
    from geoexport.pipeline.notify import ProgressCallbacks

    return ProgressCallbacks(task_repository(settings), deliveries(settings))


def client_repository(settings: Settings) -> ClientRepository:
    return ClientRepository(aws.client("dynamodb", settings), settings.clients_table)


def signing_key(settings: Settings) -> Callable[[], bytes]:
    """The JWT signing key from Secrets Manager, fetched on first use and kept for the container's life."""
    secrets = aws.client("secretsmanager", settings)

    @functools.cache
    def key() -> bytes:
        value: str = secrets.get_secret_value(SecretId=settings.signing_key_secret)["SecretString"]
        return value.encode()

    return key


def auth_service(settings: Settings) -> AuthService:
    return AuthService(client_repository(settings), signing_key(settings), settings.token_lifetime_seconds)


def model_service(settings: Settings) -> ModelService:
    return ModelService(ModelRepository(aws.client("dynamodb", settings), settings.features_table))


def feature_service(settings: Settings) -> FeatureService:
    db = aws.client("dynamodb", settings)
    models = ModelService(ModelRepository(db, settings.features_table))
    return FeatureService(
        FeatureRepository(db, settings.features_table),
        models,
        settings.tenant,
        FeatureIndex(db, settings.features_table),
        files=S3FileStorage(
            aws.client("s3", settings), settings.feature_files_bucket, settings.file_storage_id
        )
        if settings.feature_files_bucket
        else None,
        upload_ttl_seconds=settings.upload_url_ttl_seconds,
    )


def feature_requests(settings: Settings) -> FeatureRequests:
    """The messaging API: the same feature service, plus where outcomes and unreadable messages go."""
    clients = client_repository(settings)
    return FeatureRequests(
        feature_service(settings),
        RequestRepository(aws.client("dynamodb", settings), settings.features_table),
        EventBusPublisher(aws.client("events", settings), settings.feature_event_bus),
        SqsDeadLetters(aws.client("sqs", settings), settings.feature_request_dead_letter_url),
        client_exists=lambda client_id: clients.get(client_id) is not None,
    )


def request_reader(settings: Settings) -> RequestRepository:
    return RequestRepository(aws.client("dynamodb", settings), settings.features_table)
