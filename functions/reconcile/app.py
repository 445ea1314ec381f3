"""Scheduled reconciler: exports whose workflow died or was lost are resumed or end FAILED with one callback.

The local stack also runs it once at every start (``{"graceSeconds": 0}``): its emulator forgets running
executions when it stops, and this is how those exports are picked up again.
"""

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.pipeline import reconcile
from geoexport.settings import DeliverySettings, ReconcileSettings, WorkflowSettings


class Settings(DeliverySettings, WorkflowSettings, ReconcileSettings):
    """What this function reads from its environment (a missing name fails the cold start)."""


settings = Settings.from_environ(os.environ)
logger = Logger()
tracer = Tracer()
tasks = bootstrap.task_repository(settings)
store = bootstrap.exports_store(settings)
deliveries = bootstrap.deliveries(settings)
workflow = bootstrap.workflow(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    grace = float(event.get("graceSeconds", settings.reconcile_grace_seconds))
    outcome = reconcile.run(
        tasks,
        workflow,
        store,
        deliveries,
        lambda: datetime.now(UTC),
        settings.retention_days,
        grace=timedelta(seconds=max(0.0, grace)),
    )
    if outcome.resumed or outcome.failed:
        logger.warning("reconciled unfinished exports", extra=outcome.as_dict())
    return outcome.as_dict()
