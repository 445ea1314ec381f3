"""Builds the adapters and services a function needs from its settings, once per cold start."""

from __future__ import annotations

from typing import Any

from geoexport import aws
from geoexport.catalog.repository import CatalogRepository
from geoexport.settings import Settings
from geoexport.storage.s3 import ObjectStore
from geoexport.tasks.repository import TaskRepository
from geoexport.tasks.service import Limits, TaskService
from geoexport.tasks.workflow import LambdaNotifier, StepFunctionsWorkflow


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
    )


def step_tasks(settings: Settings) -> Any:
    """The task store for the pipeline steps: progress at step boundaries also fires TASK_PROGRESS."""
    from geoexport.notify.webhooks import WebhookSender
    from geoexport.pipeline.notify import ProgressCallbacks

    sender = WebhookSender(timeout_seconds=min(5.0, settings.webhook_timeout_seconds), attempts=1)
    return ProgressCallbacks(task_repository(settings), task_service(settings), sender)
