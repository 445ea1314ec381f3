"""Notify step (and the Catch path's MarkFailed): end the task and call its webhooks once."""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.pipeline import notify
from geoexport.pipeline.events import NotifyInput
from geoexport.pipeline.faults import Faults
from geoexport.settings import Settings

settings = Settings.from_environ(os.environ)
logger = Logger()
faults = Faults(settings.faults)
tasks = bootstrap.task_repository(settings)
store = bootstrap.exports_store(settings)
deliveries = bootstrap.deliveries(settings)


@logger.inject_lambda_context
@event_parser(model=NotifyInput)
def lambda_handler(event: NotifyInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(taskId=event.taskId)
    faults.before("Notify", event.taskId, context.get_remaining_time_in_millis() / 1000)
    outcome = "failed" if event.failedStep else event.outcome
    if outcome == "failed":
        logger.warning("export failed", extra={"step": event.failedStep, "error": event.error})
    result = notify.run(
        event.taskId,
        tasks,
        store,
        deliveries,
        lambda: datetime.now(UTC),
        settings.retention_days,
        outcome=outcome,
        failed_step=event.failedStep,
        error=event.error,
    )
    return faults.after("Notify", result)
