"""Upload step: publish the staged files under exports/ and record them as the task's artifacts."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap, telemetry
from geoexport.pipeline import upload
from geoexport.pipeline.events import UploadInput
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


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=UploadInput)
def lambda_handler(event: UploadInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(taskId=event.taskId)
    with steps.run(event.taskId, "Upload"), telemetry.step_duration(metrics, "Upload"):
        faults.before("Upload", event.taskId, context.get_remaining_time_in_millis() / 1000)
        result = upload.run(event.taskId, [f.model_dump() for f in event.files], tasks, store)
    return faults.after("Upload", result)
