"""Feature files: S3 tells (through a queue) that an object arrived; verify it against the feature's file."""

import json
import os
import urllib.parse
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.settings import FeatureWriterSettings

settings = FeatureWriterSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
features = bootstrap.feature_writer(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord) -> None:
    message = json.loads(record.body)
    for entry in message.get("Records", []):  # none in S3's s3:TestEvent
        if not str(entry.get("eventName", "")).startswith("ObjectCreated"):
            continue
        key = urllib.parse.unquote_plus(entry["s3"]["object"]["key"])
        for outcome in features.file_arrived(key):
            logger.info("feature file", extra={"outcome": outcome})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
