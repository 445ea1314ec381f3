"""OGC API - Features (read-only) over the caller's features: GET /ogc, /ogc/conformance, /ogc/collections,
/ogc/collections/{collectionId}, .../items and .../items/{featureId} (GeoJSON; CQL2 text filters)."""

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver, public_base
from geoexport.api.schema import responses
from geoexport.features import ogc
from geoexport.features.feature import BBOX, parse_bbox
from geoexport.settings import FeaturesSettings

settings = FeaturesSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
features = bootstrap.feature_service(settings)
models = bootstrap.model_service(settings)
GEOJSON = {"Content-Type": "application/geo+json"}


def base() -> str:
    return public_base(app.current_event.raw_event, "/ogc")


@app.get("/ogc", summary="OGC API - Features: the landing page", responses=responses({200: ("Links", dict)}))
def landing() -> Response[str]:
    return json_response(200, ogc.landing(base()))


@app.get(
    "/ogc/conformance",
    summary="The conformance classes this API passes",
    responses=responses({200: ("Classes", dict)}),
)
def conformance() -> Response[str]:
    return json_response(200, ogc.conformance())


@app.get(
    "/ogc/collections",
    summary="One collection per model the caller has features of",
    responses=responses({200: ("Collections", dict)}),
)
def collections() -> Response[str]:
    return json_response(200, ogc.collections(base(), caller(app), models, features))


@app.get(
    "/ogc/collections/<collection_id>",
    summary="A collection (a model the caller has features of)",
    responses=responses({200: ("The collection", dict)}, 404),
)
def collection(collection_id: str) -> Response[str]:
    return json_response(200, ogc.one_collection(base(), caller(app), collection_id, models, features))


@app.get(
    "/ogc/collections/<collection_id>/items",
    summary="A page of the collection's features: bbox, datetime (updatedAt), CQL2 text filter, next links",
    responses=responses(
        {200: ("GeoJSON FeatureCollection", dict)}, 400, 404, media_type="application/geo+json"
    ),
)
def items(
    collection_id: str,
    bbox: Annotated[
        str | None, Query(pattern=BBOX, description="minLon,minLat,maxLon,maxLat (CRS84)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=ogc.MAX_LIMIT)] = ogc.DEFAULT_LIMIT,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
    datetime: Annotated[str | None, Query(max_length=100)] = None,
    filter: Annotated[str | None, Query(max_length=4096, description="CQL2 text")] = None,  # OGC's name
) -> Response[str]:
    query = dict(app.current_event.query_string_parameters or {})
    box = parse_bbox(bbox) if bbox else None
    page = ogc.items(base(), caller(app), collection_id, features, query, box, limit, nextToken)
    return json_response(200, page, headers=GEOJSON)


@app.get(
    "/ogc/collections/<collection_id>/items/<feature_id>",
    summary="One feature of the collection (its id is the feature's urn)",
    responses=responses({200: ("GeoJSON Feature", dict)}, 404, media_type="application/geo+json"),
)
def item(collection_id: str, feature_id: str) -> Response[str]:
    answer = ogc.item(base(), caller(app), collection_id, feature_id, features)
    return json_response(200, answer, headers=GEOJSON)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
