"""Builds the adapters and services a function needs from its settings, once per cold start."""

from __future__ import annotations

from geoexport import aws
from geoexport.catalog.repository import CatalogRepository
from geoexport.settings import Settings
from geoexport.storage.s3 import ObjectStore
from geoexport.tasks.repository import TaskRepository
from geoexport.tasks.service import TaskService
from geoexport.tasks.workflow import StepFunctionsWorkflow


def exports_store(settings: Settings) -> ObjectStore:
    return ObjectStore(aws.client("s3", settings), settings.exports_bucket)


def task_repository(settings: Settings) -> TaskRepository:
    return TaskRepository(aws.client("dynamodb", settings), settings.tasks_table)


def catalog_repository(settings: Settings) -> CatalogRepository:
    return CatalogRepository(aws.client("dynamodb", settings), settings.catalog_table)


def task_service(settings: Settings) -> TaskService:
    return TaskService(
        tasks=task_repository(settings),
        catalog=catalog_repository(settings),
        workflow=StepFunctionsWorkflow(aws.client("stepfunctions", settings), settings.state_machine_arn),
        links=exports_store(settings),
        download_url_ttl_seconds=settings.download_url_ttl_seconds,
    )
