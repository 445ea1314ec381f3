"""Messaging API: feature create/patch/delete requests from the queue (EventBridge rule or direct sends)."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.features.requests import FeatureRequest
from geoexport.settings import FeatureRequestSettings

settings = FeatureRequestSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
requests = bootstrap.feature_requests(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord, parsed: dict[str, FeatureRequest]) -> None:
    """One request; an internal failure is raised, so SQS delivers that message again."""
    outcome = requests.handle(parsed[record.message_id])
    logger.info(
        "feature request",
        extra={"requestId": outcome.requestId, "state": outcome.state.value, "urn": outcome.urn},
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """HIGH-priority requests of the batch first; malformed ones are dead-lettered (and not retried)."""
    records = {record["messageId"]: record for record in event.get("Records", [])}
    taken = requests.take([(message_id, record["body"]) for message_id, record in records.items()])
    parsed = dict(taken)
    if not taken:
        return {"batchItemFailures": []}  # every message was malformed: dead-lettered, nothing to retry
    ordered = {**event, "Records": [records[message_id] for message_id, _ in taken]}
    return process_partial_response(
        event=ordered,
        record_handler=lambda record: handle(record, parsed),
        processor=processor,
        context=context,
    )
