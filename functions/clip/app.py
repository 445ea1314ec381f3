"""Clip step: intersect the ROI with the source footprint and plan the tiles per zoom (RASTER), or select
and clip the owner's features (VECTOR)."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap, telemetry
from geoexport.pipeline import clip
from geoexport.pipeline.events import ClipInput
from geoexport.pipeline.faults import Faults
from geoexport.settings import CatalogSettings, FeaturesSettings, PipelineSettings


class Settings(PipelineSettings, CatalogSettings, FeaturesSettings):
    """What Clip reads from its environment (a missing name fails the cold start)."""


settings = Settings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
faults = Faults(settings.faults)
tasks = bootstrap.task_repository(settings)
catalog = bootstrap.catalog_repository(settings)
store = bootstrap.exports_store(settings)
steps = bootstrap.step_log(settings)
features = bootstrap.feature_service(settings)  # VECTOR exports read the feature repository


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ClipInput)
def lambda_handler(event: ClipInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(taskId=event.taskId)
    with steps.run(event.taskId, "Clip"), telemetry.step_duration(metrics, "Clip"):
        faults.before("Clip", event.taskId, context.get_remaining_time_in_millis() / 1000)
        result = clip.run(
            event.taskId,
            tasks,
            catalog,
            store,
            settings.gdal_s3_options(),
            features,
            settings.fanout,
            settings.select_limits,
        )
    return faults.after("Clip", result)
