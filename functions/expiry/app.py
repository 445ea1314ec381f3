"""Scheduled sweep: completed exports past expiredAt become EXPIRED, their files go (TASK_EXPIRED follows), or
are archived when their request asked for it; restores whose files have thawed are finished."""

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.pipeline import expiry
from geoexport.settings import ArchiveSettings


class Settings(ArchiveSettings):
    """What this function reads from its environment (a missing name fails the cold start)."""


settings = Settings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
tasks = bootstrap.task_repository(settings)
store = bootstrap.exports_store(settings)
archiver = bootstrap.archiver(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = expiry.run(tasks, store, lambda: datetime.now(UTC), settings.retention_days, archiver)
    for outcome in ("expired", "archived", "restored", "postponed"):
        if result[outcome]:
            logger.info(f"exports {outcome}", extra={"count": len(result[outcome])})
    return result
