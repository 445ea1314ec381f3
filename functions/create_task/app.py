"""POST /export-tasks (and v1's POST /create/roi and deprecated POST /create): dedupe, estimate, reserve
storage, start the workflow."""

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.models import CreateExportTaskRequest, ExportTask
from geoexport.models.tasks import Api, TaskStatus
from geoexport.models.v1 import CompletedAnswer, CreateGetMapRequest, CreateRoiRequest, InProgressAnswer
from geoexport.notify.callback import v1_body
from geoexport.settings import TaskServiceSettings
from geoexport.tasks.service import DryRun

settings = TaskServiceSettings.from_environ(os.environ)
logger = Logger()
metrics = Metrics()
app = make_resolver()
service = bootstrap.task_service(settings)


@app.post(
    "/export-tasks",
    summary="Create an export task (or find the identical one already there)",
    responses=responses(
        {
            201: ("Created and started", ExportTask),
            200: ("An identical task answers (see dedupe), or a dry run's estimate", ExportTask | DryRun),
        },
        404,
        413,
        409,
        415,
        422,
        429,
        503,
        507,
    ),
)
def create_export_task(
    request: Annotated[CreateExportTaskRequest, Body()],
    dryRun: Annotated[bool, Query(description="only estimate; create nothing")] = False,
) -> Response[str]:
    if dryRun:
        return json_response(200, service.dry_run(request))
    outcome = service.create(request, owner=caller(app))
    logger.info("export task", extra={"taskId": str(outcome.task.id), "newTask": outcome.created})
    metrics.add_metric(
        name="ExportsCreated" if outcome.created else "ExportsDeduplicated", unit=MetricUnit.Count, value=1
    )
    return json_response(
        201 if outcome.created else 200,
        outcome.task,
        headers={"Location": f"/export-tasks/{outcome.task.id}"},
    )


def v1_responses(text: str) -> dict[int, Any]:
    """What both v1 creates answer: Appendix 3 or 4, and the create path's errors."""
    return responses({200: (text, InProgressAnswer | CompletedAnswer)}, 404, 413, 415, 422, 429, 503, 507)


@app.post(
    "/create/roi",
    summary="v1 (seed 000): create an export from an ROI",
    responses=v1_responses("In progress (Appendix 3) or cached and completed (Appendix 4)"),
)
def create_roi_v1(request: Annotated[CreateRoiRequest, Body()]) -> Response[str]:
    return v1_answer(service.create(request.to_canonical(), owner=caller(app), api=Api.V1).task)


def v1_answer(task: ExportTask, headers: dict[str, str] | None = None) -> Response[str]:
    """Appendix 4 for a completed (cached) export, else Appendix 3."""
    if task.status is TaskStatus.COMPLETED:
        return json_response(200, CompletedAnswer.model_validate(v1_body(task)), headers=headers)
    return json_response(200, InProgressAnswer(id=str(task.id), taskIds=[str(task.id)]), headers=headers)


#: RFC 9745 (the date it was deprecated here) and RFC 8288 (where to go instead).
DEPRECATION = {"Deprecation": "@1767225600", "Link": '</create/roi>; rel="successor-version"'}


@app.post(
    "/create",
    summary="v1, deprecated (seed 000: create 'in use of GetMap'): a bbox, a resolution or pixel size, a "
    "record; use /create/roi",
    deprecated=True,
    responses=v1_responses(
        "In progress (Appendix 3) or cached and completed (Appendix 4); Deprecation and Link headers"
    ),
)
def create_getmap_v1(request: Annotated[CreateGetMapRequest, Body()]) -> Response[str]:
    logger.info("deprecated v1 create", extra={"dbId": request.dbId})
    task = service.create(request.to_canonical(), owner=caller(app), api=Api.V1).task
    return v1_answer(task, headers=DEPRECATION)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
