"""GET /storage: free and total bytes of the export storage."""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import json_response, make_resolver
from geoexport.settings import Settings
from geoexport.storage.quota import storage_report

settings = Settings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
store = bootstrap.exports_store(settings)


@app.get("/storage")
def get_storage() -> Response[str]:
    return json_response(200, storage_report(store, settings.storage_quota_bytes))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
