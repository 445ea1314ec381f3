"""POST /export-tasks: validate the request against the catalog, store the task, start the workflow."""

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import json_response, make_resolver
from geoexport.models import CreateExportTaskRequest
from geoexport.settings import Settings

settings = Settings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
service = bootstrap.task_service(settings)


@app.post("/export-tasks")
def create_export_task(request: Annotated[CreateExportTaskRequest, Body()]) -> Response[str]:
    task = service.create(request)
    logger.info("export task created", extra={"taskId": str(task.id)})
    return json_response(201, task, headers={"Location": f"/export-tasks/{task.id}"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
