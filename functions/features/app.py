"""Feature CRUD (seed 004): POST /features (one or a batch), GET/PATCH/DELETE /features/{urn}, and
GET /requests/{id} (the outcome of a request sent through the messaging API)."""

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.features.cql2 import parse_filter
from geoexport.features.feature import (
    BBOX,
    BatchAnswer,
    EntityType,
    Feature,
    FeatureAnswer,
    FeatureBody,
    FeatureCollectionIn,
    FeaturePage,
    parse_bbox,
)
from geoexport.features.requests import RequestRecord, request_of
from geoexport.settings import FeatureWriterSettings

settings = FeatureWriterSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
features = bootstrap.feature_writer(settings)
requests = bootstrap.request_reader(settings)


def _if_match() -> str | None:
    headers = {k.lower(): v for k, v in (app.current_event.headers or {}).items()}
    return headers.get("if-match")


@app.post(
    "/features",
    summary="Create a feature (201 with its urn), or a FeatureCollection (207, answered per feature)",
    responses=responses(
        {
            201: ("The feature, with an upload URL per file to store", FeatureAnswer),
            207: ("Each feature's outcome", BatchAnswer),
        },
        409,
        422,
    ),
)
def create_features(body: Annotated[FeatureBody, Body()]) -> Response[str]:
    owner = caller(app)
    if isinstance(body, FeatureCollectionIn):
        return json_response(207, BatchAnswer(items=features.create_batch(body, owner)))
    feature, etag = features.create(body, owner)
    logger.info("feature created", extra={"urn": feature.urn})
    return json_response(201, feature, headers={"ETag": etag})


@app.get(
    "/features",
    summary="The caller's features meeting a bbox (minLon,minLat,maxLon,maxLat) exactly, by model and type, "
    "and a CQL2 filter",
    responses=responses({200: ("A page of features", FeaturePage)}, 400),
)
def list_features(
    bbox: Annotated[
        str | None, Query(pattern=BBOX, description="minLon,minLat,maxLon,maxLat (EPSG:4326)")
    ] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    entityType: Annotated[EntityType | None, Query()] = None,
    limit: Annotated[
        int,
        Query(
            ge=1, le=1000, description="at most this many; a page also ends at about 5 MB (follow nextToken)"
        ),
    ] = 100,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
    filter: Annotated[  # OGC API - Features calls it so
        str | None,
        Query(
            max_length=4096,
            description="CQL2 text over the features' properties (and urn, id, model, entityType, version), "
            "e.g. depth > 10 AND name LIKE 'reef%'",
        ),
    ] = None,
) -> Response[str]:
    box = parse_bbox(bbox) if bbox else None
    where = parse_filter(filter) if filter else None
    items, token = features.list(caller(app), box, model, entityType, limit, nextToken, where)
    return json_response(200, FeaturePage(items=items, nextToken=token))


@app.get(
    "/features/<urn>",
    summary="A feature (the current version, or the one its urn names); ETag for optimistic locking",
    responses=responses({200: ("The feature", Feature)}, 404),
)
def get_feature(urn: str) -> Response[str]:
    feature, etag = features.get(urn, caller(app))
    return json_response(200, feature, headers={"ETag": etag})


@app.patch(
    "/features/<urn>",
    summary="JSON Merge Patch (RFC 7386) of properties, geometry or files: a new version; If-Match or 412",
    responses=responses(
        {200: ("The new version, with an upload URL per file still to store", FeatureAnswer)}, 404, 412, 422
    ),
)
def patch_feature(urn: str, patch: Annotated[dict[str, Any], Body()]) -> Response[str]:
    feature, etag = features.patch(urn, patch, _if_match(), caller(app))
    return json_response(200, feature, headers={"ETag": etag})


@app.delete(
    "/features/<urn>",
    summary="Delete a feature and all its versions; If-Match or 412",
    responses=responses({204: ("Deleted", None)}, 404, 412),
)
def delete_feature(urn: str) -> Response[str]:
    features.delete(urn, _if_match(), caller(app))
    return Response(status_code=204, body="")


@app.get(
    "/requests/<request_id>",
    summary="A messaging-API request: GRANTED, then SUCCESS (with the urn), DENIED (with reasons) or ERROR",
    responses=responses({200: ("The request and its steps", RequestRecord)}, 404),
)
def get_request(request_id: str) -> Response[str]:
    return json_response(200, request_of(requests, request_id, caller(app)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
