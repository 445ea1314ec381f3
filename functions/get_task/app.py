"""GET /export-tasks[/{id}[/log|/quicklook]] (and v1's GET /taskStatus/{jobId}): status, progress, fresh
download links, what happened to a task, and its preview."""

import os
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import TaskPage, responses
from geoexport.models import ExportTask, TaskStatus
from geoexport.models.tasks import QuicklookView
from geoexport.models.v1 import TaskStatusAnswer
from geoexport.notify.callback import V1_STATUS
from geoexport.settings import TaskLogSettings, ViewSettings
from geoexport.tasks.log import TaskLog, task_log


class Settings(ViewSettings, TaskLogSettings):
    """What the read side needs: tasks, links, delivery outcomes, task logs."""


settings = Settings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
service = bootstrap.task_views(settings)
logs = bootstrap.task_log(settings)


@app.get(
    "/export-tasks/<task_id>",
    summary="An export task: status, progress, artifacts with fresh links",
    responses=responses({200: ("The task", ExportTask)}, 404),
)
def get_export_task(task_id: UUID) -> Response[str]:
    return json_response(200, service.get(task_id, caller(app)))


@app.get(
    "/export-tasks/<task_id>/log",
    summary="What happened to an export task: status changes, each step's runs and durations, retries, "
    "webhook outcomes (oldest first)",
    responses=responses({200: ("The task's log", TaskLog)}, 404),
)
def get_export_task_log(task_id: UUID) -> Response[str]:
    task = service.get(task_id, caller(app))  # the caller's own task, else 404
    return json_response(200, task_log(task_id, logs.entries(task_id), task.webhookDeliveries or []))


@app.get(
    "/export-tasks/<task_id>/quicklook",
    summary="A COMPLETED raster export's preview: the PNG inline (data URL) with its corners, for a map",
    responses=responses({200: ("The quicklook", QuicklookView)}, 404, 409),
)
def get_export_task_quicklook(task_id: UUID) -> Response[str]:
    return json_response(200, service.quicklook(task_id, caller(app)))


@app.get(
    "/export-tasks",
    summary="Export tasks, newest first",
    responses=responses({200: ("A page of tasks", TaskPage)}),
)
def list_export_tasks(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
    status: Annotated[TaskStatus | None, Query()] = None,
) -> Response[str]:
    items, token = service.list_tasks(caller(app), status, limit, nextToken)
    return json_response(200, TaskPage(items=items, nextToken=token))


@app.get(
    "/taskStatus/<job_id>",
    summary="v1 (seed 000): percentage and status of a job",
    responses=responses({200: ("Status", TaskStatusAnswer)}, 404),
)
def task_status_v1(job_id: UUID) -> Response[str]:
    task = service.get(job_id, caller(app))
    return json_response(200, TaskStatusAnswer(percentage=task.progress, status=V1_STATUS[task.status]))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
