"""POST /export-tasks/{id}/abort: stop the workflow; the task ends ABORTED and TASK_FAILED callbacks fire."""

import os
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.models import ExportTask
from geoexport.settings import AbortSettings

settings = AbortSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
service = bootstrap.abort_service(settings)


@app.post(
    "/export-tasks/<task_id>/abort",
    summary="Abort a pending or running export",
    responses=responses({200: ("The aborted task", ExportTask)}, 404, 409, 503),
)
def abort_export_task(task_id: UUID) -> Response[str]:
    task = service.abort(task_id, caller(app))
    logger.info("export task aborted", extra={"taskId": str(task_id)})
    return json_response(200, task)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
