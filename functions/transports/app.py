"""Transports of finished exports (s3 copies, email through SES), from the transport queue: each pending
transport of the task is delivered once and ends done or failed with its reason (geoexport.tasks.transports).
A passing AWS fault is raised, so SQS delivers the message again."""

import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.settings import TransportSettings

settings = TransportSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
transports = bootstrap.transports(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord) -> None:
    task_id = str(json.loads(record.body)["taskId"])
    for outcome in transports.deliver(task_id):
        logger.info(
            "transport",
            extra={"taskId": task_id, "type": outcome.type, "state": outcome.state, "reason": outcome.reason},
        )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
