"""Package step: render the planned export (a GeoPackage, a COG or vector layers) plus its metadata JSON and
STAC Item, staged in scratch. A fanned-out GeoPackage comes here once per work item (RenderPart) and once to
assemble the parts (Merge)."""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap, telemetry
from geoexport.pipeline import package
from geoexport.pipeline.events import MergeInput, PackageEvent, PackageInput, RenderPartInput
from geoexport.pipeline.faults import Faults
from geoexport.settings import PackageSettings

settings = PackageSettings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
faults = Faults(settings.faults)
tasks = bootstrap.task_repository(settings)
store = bootstrap.exports_store(settings)
steps = bootstrap.step_log(settings)
sources = bootstrap.feature_file_reader(settings)  # VECTOR exports with files copy the stored ones


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PackageEvent)
def lambda_handler(event: PackageInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(taskId=event.taskId)
    remaining = context.get_remaining_time_in_millis() / 1000
    if isinstance(event, RenderPartInput):
        logger.append_keys(item=event.item.index)
        part = f"RenderPart {event.item.index}"
        with steps.run(event.taskId, part), telemetry.step_duration(metrics, "RenderPart"):
            faults.before("RenderPart", f"{event.taskId}#{event.item.index}", remaining)
            result = package.run_item(
                event.taskId,
                event.planKey,
                event.item,
                event.items,
                tasks,
                store,
                settings.threads,
                settings.gdal_s3_options(),
            )
        return faults.after("RenderPart", result)
    step = "Merge" if isinstance(event, MergeInput) else "Package"
    with steps.run(event.taskId, step), telemetry.step_duration(metrics, "Package"):
        faults.before("Package", event.taskId, remaining)
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
            settings.fanout_tolerated_percent if isinstance(event, MergeInput) else None,
            sources,
        )
    return faults.after("Package", result)
