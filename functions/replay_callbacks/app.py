"""POST /export-tasks/{id}/callbacks:replay: queue again the task's exhausted webhook deliveries;
POST /export-tasks/{id}/transports:retry: its failed transports back to pending, and queued again. (API
Gateway has one resource for both, /export-tasks/{task_id}/{action}: a path part cannot hold a colon.)"""

import os
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import ReplayAnswer, responses
from geoexport.models.tasks import TransportStatus
from geoexport.settings import TaskActionSettings

settings = TaskActionSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
service = bootstrap.task_views(settings)
deliveries = bootstrap.deliveries(settings, views=service)
retries = bootstrap.transport_retries(settings)


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


class RetryAnswer(BaseModel):
    taskId: UUID
    retried: list[TransportStatus]


@app.post(
    "/export-tasks/<task_id>/transports:retry",
    summary="Run the failed transports again (back to pending, then delivered by the Transports function)",
    responses=responses(
        {202: ("The transports queued again", RetryAnswer), 200: ("No transport had failed", RetryAnswer)},
        404,
        409,
    ),
)
def retry_transports(task_id: UUID) -> Response[str]:
    retried = retries.retry(service.owned(task_id, caller(app)))
    logger.info("transports retried", extra={"taskId": str(task_id), "count": len(retried)})
    return json_response(202 if retried else 200, RetryAnswer(taskId=task_id, retried=retried))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
