"""POST /export-tasks/{id}/callbacks:replay: queue again the task's exhausted webhook deliveries."""

import os
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import ReplayAnswer, responses
from geoexport.settings import DeliverySettings

settings = DeliverySettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
service = bootstrap.task_views(settings)
deliveries = bootstrap.deliveries(settings, views=service)


@app.post(
    "/export-tasks/<task_id>/callbacks:replay",
    summary="Deliver again the webhooks that exhausted their retries (same webhook-id)",
    responses=responses(
        {202: ("The deliveries queued again", ReplayAnswer), 200: ("Nothing to replay", ReplayAnswer)}, 404
    ),
)
def replay_callbacks(task_id: UUID) -> Response[str]:
    queued = deliveries.replay(service.owned(task_id, caller(app)))
    logger.info("callbacks replayed", extra={"taskId": str(task_id), "count": len(queued)})
    return json_response(202 if queued else 200, ReplayAnswer(taskId=task_id, replayed=queued))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
