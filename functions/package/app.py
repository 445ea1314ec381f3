"""Package step: render the planned tiles into a GeoPackage plus its metadata JSON, staged in scratch."""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap, telemetry
from geoexport.pipeline import package
from geoexport.pipeline.events import PackageInput
from geoexport.pipeline.faults import Faults
from geoexport.settings import PipelineSettings

settings = PipelineSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
faults = Faults(settings.faults)
tasks = bootstrap.task_repository(settings)
store = bootstrap.exports_store(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PackageInput)
def lambda_handler(event: PackageInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(taskId=event.taskId)
    faults.before("Package", event.taskId, context.get_remaining_time_in_millis() / 1000)
    with telemetry.step_duration(metrics, "Package"):
        result = package.run(
            event.taskId,
            event.planKey,
            tasks,
            store,
            settings.threads,
            settings.gdal_s3_options(),
            lambda: datetime.now(UTC),
            settings.retention_days,
            settings.vector_part_bytes,
        )
    return faults.after("Package", result)
