"""PUT /catalog/records/{id}: a record's new source (scope catalog:write); GDAL describes it, and
CatalogRecordUpdated goes out on the exports bus (geoexport.catalog.update)."""

import os
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import json_response, make_resolver, require_scope
from geoexport.api.schema import responses
from geoexport.catalog.update import SCOPE, SourceUpdate
from geoexport.catalog.views import RecordView, record_view
from geoexport.settings import CatalogUpdateSettings

settings = CatalogUpdateSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
updates = bootstrap.catalog_updates(settings)


@app.put(
    "/catalog/records/<record_id>",
    summary="Replace a record's source with a new version (needs the catalog:write scope); definitions "
    "that follow the record run again",
    responses=responses({200: ("The record at its new version", RecordView)}, 403, 404, 409, 415, 422),
)
def replace_source(record_id: UUID, body: Annotated[SourceUpdate, Body()]) -> Response[str]:
    require_scope(app, SCOPE)
    record = updates.replace_source(record_id, body)
    logger.info("record updated", extra={"recordId": str(record_id), "productVersion": record.productVersion})
    return json_response(200, record_view(record))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
