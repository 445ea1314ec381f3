"""Scheduled sweep: completed exports past expiredAt become EXPIRED, files go, TASK_EXPIRED callbacks fire."""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.pipeline import expiry
from geoexport.settings import Settings

settings = Settings.from_environ(os.environ)
logger = Logger()
tasks = bootstrap.task_repository(settings)
store = bootstrap.exports_store(settings)
deliveries = bootstrap.deliveries(settings)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = expiry.run(tasks, store, deliveries, lambda: datetime.now(UTC), settings.retention_days)
    if result["expired"]:
        logger.info("exports expired", extra={"count": len(result["expired"])})
    return result
