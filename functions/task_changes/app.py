"""Task changes from the tasks table's stream: the final callback when a status becomes final, TASK_PROGRESS
at progress milestones, an ExportTaskStatusChanged event on the exports bus and an entry in the task's log
for every status change (geoexport.notify.changes, geoexport.tasks.log), and the task's transports queued
when it finishes (geoexport.tasks.transports). A record that fails is retried by
the event source mapping (partial batch failures); the reconciler announces what still was not after that."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap, telemetry
from geoexport.notify import changes
from geoexport.settings import TaskChangeSettings
from geoexport.tasks import log, transports
from geoexport.tasks.repository import from_item

settings = TaskChangeSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
tasks = bootstrap.task_repository(settings)
deliveries = bootstrap.deliveries(settings)
status_events = bootstrap.status_events(settings)
logs = bootstrap.task_log(settings)
transport_queue = bootstrap.transport_queue(settings)
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def handle(record: DynamoDBRecord) -> None:
    stream = record.raw_event["dynamodb"]
    old = from_item(stream["OldImage"]) if stream.get("OldImage") else None
    new = from_item(stream["NewImage"]) if stream.get("NewImage") else None
    entry = log.status_entry(old, new)
    if entry is not None and new is not None:
        logs.add(new.id, entry, log.status_key(entry))
    changes.publish_status(old, new, status_events)
    if transports.needs_delivery(old, new) and new is not None:
        transport_queue.send(str(new.id))  # queued again on a redelivered record: delivery skips done ones
    if changes.react(old, new, tasks, deliveries) and new is not None:
        logger.info("change announced", extra={"taskId": str(new.id), "status": new.status.value})
        if new.status in changes.ANNOUNCED:
            telemetry.ended(metrics, new)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
