"""Notify step (and the Catch path's MarkFailed): end the task and clean up; callbacks follow the change."""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap, telemetry
from geoexport.pipeline import notify
from geoexport.pipeline.events import NotifyInput
from geoexport.pipeline.faults import Faults
from geoexport.settings import PipelineSettings

settings = PipelineSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
faults = Faults(settings.faults)
tasks = bootstrap.task_repository(settings)
store = bootstrap.exports_store(settings)
steps = bootstrap.step_log(settings)


#: How the log names this function's runs: the state machine's Notify, or its MarkFailed.
STEP_NAMES = {notify.Outcome.COMPLETED: "Notify", notify.Outcome.FAILED: "MarkFailed"}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=NotifyInput)
def lambda_handler(event: NotifyInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(taskId=event.taskId)
    outcome = notify.Outcome.FAILED if event.failedStep else event.outcome
    if outcome is notify.Outcome.FAILED:
        logger.warning("export failed", extra={"step": event.failedStep, "error": event.error})
    step = STEP_NAMES.get(outcome, f"Notify ({outcome.value})")
    with steps.run(event.taskId, step), telemetry.step_duration(metrics, "Notify"):
        faults.before("Notify", event.taskId, context.get_remaining_time_in_millis() / 1000)
        result = notify.run(
            event.taskId,
            tasks,
            store,
            lambda: datetime.now(UTC),
            settings.retention_days,
            outcome=outcome,
            failed_step=event.failedStep,
            error=event.error,
        )
    return faults.after("Notify", result)
