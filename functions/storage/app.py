"""GET /storage: free and total bytes of the export storage, and of the caller's own quota."""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.settings import ViewSettings
from geoexport.storage.quota import StorageReport, storage_report

settings = ViewSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
tasks = bootstrap.task_repository(settings)
quotas = bootstrap.client_quotas(settings)


@app.get(
    "/storage",
    summary="Free and total bytes of the export storage, and of the caller's own quota",
    responses=responses({200: ("Storage", StorageReport)}),
)
def get_storage() -> Response[str]:
    owner = caller(app)
    return json_response(200, storage_report(tasks, settings.storage_quota_bytes, owner, quotas(owner)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
