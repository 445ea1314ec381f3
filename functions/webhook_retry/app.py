"""Webhook retry queue consumer: sends each due delivery, queues the next attempt or dead-letters it."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from geoexport import bootstrap
from geoexport.notify.delivery import DeliveryJob
from geoexport.settings import DeliverySettings

settings = DeliverySettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
deliveries = bootstrap.deliveries(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord) -> None:
    try:
        job = DeliveryJob.model_validate_json(record.body)
    except ValidationError as error:
        # Not ours to retry: park it with the reason instead of letting it bounce until redrive.
        reason = f"not a delivery job: {error.errors(include_url=False)[:3]}"
        deliveries.dead_letter(record.body, reason)
        logger.warning("malformed delivery job dead-lettered", extra={"messageId": record.message_id})
        return
    outcome = deliveries.retry(job)
    if outcome is None:
        logger.info(
            "delivery job not run (not due yet, superseded or task gone)",
            extra={"job": job.model_dump(mode="json")},
        )
    else:
        logger.info(
            "webhook delivery attempt",
            extra={"taskId": str(job.taskId), "outcome": outcome.outcome.value, "attempts": outcome.attempts},
        )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
