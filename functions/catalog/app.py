"""GET /catalog/records[/{id}]: the products one can export, with footprint, resolution and source."""

import os
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.catalog.views import RecordList, RecordView, record_view
from geoexport.settings import CatalogSettings

settings = CatalogSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
catalog = bootstrap.catalog_repository(settings)


@app.get(
    "/catalog/records",
    summary="Products one can export",
    responses=responses({200: ("The catalog", RecordList)}),
)
def list_records() -> Response[str]:
    return json_response(200, {"records": [record_view(record) for record in catalog.list()]})


@app.get(
    "/catalog/records/<record_id>",
    summary="One product",
    responses=responses({200: ("The record", RecordView)}, 404),
)
def get_record(record_id: UUID) -> Response[str]:
    return json_response(200, record_view(catalog.get(record_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
