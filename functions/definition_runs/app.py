"""The definition run queue: schedules firing (EventBridge Scheduler sends their input here), catalog
records' new sources and clients' changed features (CatalogRecordUpdated, FeaturesChanged: a rule on the
exports bus). A firing runs its definition once
(its scheduled time is the run's key); a source change schedules one run per following definition after the
coalescing window (geoexport.definitions)."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.definitions import triggers
from geoexport.settings import DefinitionSettings

settings = DefinitionSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
definitions = bootstrap.definition_service(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def handle(record: SQSRecord) -> None:
    trigger = triggers.parse(record.body)
    if isinstance(trigger, triggers.SourceChanged):
        scheduled = definitions.source_changed(trigger.source, trigger.bbox, trigger.models)
        logger.info("source changed", extra={"source": trigger.source, "scheduled": len(scheduled)})
        return
    run = definitions.run(trigger.definition_id, trigger.cause, trigger.due)
    logger.info(
        "definition run",
        extra={
            "definitionId": str(trigger.definition_id),
            "outcome": run.outcome if run else "gone",
            "taskId": str(run.taskId) if run and run.taskId else None,
            "reason": run.reason if run else None,
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
