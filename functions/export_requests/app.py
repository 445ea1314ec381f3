"""Exports requested by events: ExportRequested events from the exports bus (through a rule and a queue),
created as the API creates them; the answers go back on the bus."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.settings import ExportRequestSettings

settings = ExportRequestSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
requests = bootstrap.export_requests(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord) -> None:
    """One message; a passing failure is raised, so SQS delivers that message again."""
    answer = requests.handle(record.body, record.message_id)
    if answer is not None:
        logger.info(
            "export request",
            extra={"requestId": answer.requestId, "outcome": answer.outcome, "taskId": answer.taskId},
        )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
