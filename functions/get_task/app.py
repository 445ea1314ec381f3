"""GET /export-tasks/{id}: the task's status and progress, and fresh download links once it is done."""

import os
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import json_response, make_resolver
from geoexport.settings import Settings

settings = Settings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
service = bootstrap.task_service(settings)


@app.get("/export-tasks/<task_id>")
def get_export_task(task_id: UUID) -> Response[str]:
    return json_response(200, service.get(task_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
