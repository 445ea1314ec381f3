"""OGC API - Features (Part 1 core + GeoJSON, Part 3 filtering with CQL2 text), read-only, over the
feature repository: GIS clients (QGIS, OWSLib, GDAL's OAPIF driver) read the caller's features with the
same bearer token and ownership as the rest of the API.

A collection is a model the caller has features of; an item's id is the feature's urn. ``datetime``
selects by the time a feature was last written (``updatedAt``), the only time the repository keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from geoexport.errors import FieldProblem, InvalidRequest, NotFound
from geoexport.features.cql2 import PropertyFilter, parse_filter
from geoexport.features.feature import Feature
from geoexport.features.service import FeatureService, ModelService

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
JSON = "application/json"
DEFAULT_LIMIT, MAX_LIMIT = 10, 1000


def landing(base: str) -> dict[str, Any]:
    return {
        "title": "geoexport feature repository",
        "description": "Your features (seed 004) as OGC API - Features collections, one per model.",
        "links": [
            {"rel": "self", "type": JSON, "title": "this document", "href": f"{base}/"},
            {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "the API definition", "href": f"{base.rsplit('/', 1)[0]}/openapi.json"},
            {"rel": "conformance", "type": JSON, "title": "conformance", "href": f"{base}/conformance"},
            {"rel": "data", "type": JSON, "title": "collections", "href": f"{base}/collections"},
        ],
    }  # fmt: skip


def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


def collection(base: str, name: str, description: str = "") -> dict[str, Any]:
    href = f"{base}/collections/{quote(name, safe='')}"
    return {
        "id": name,
        "title": name,
        "description": description or f"features of the model {name}",
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": CRS84}},
        "links": [
            {"rel": "self", "type": JSON, "href": href},
            {"rel": "items", "type": GEOJSON, "title": "the features", "href": f"{href}/items"},
        ],
    }


def collections(base: str, owner: str, models: ModelService, features: FeatureService) -> dict[str, Any]:
    """The models the caller has at least one feature of (one index read each)."""
    found = []
    for model in sorted(models.all_models(), key=lambda m: m.name):
        items, _ = features.list(owner, None, model.name, None, 1, None)
        if items:
            found.append(collection(base, model.name, model.description))
    return {
        "collections": found,
        "links": [{"rel": "self", "type": JSON, "href": f"{base}/collections"}],
    }


def one_collection(
    base: str, owner: str, name: str, models: ModelService, features: FeatureService
) -> dict[str, Any]:
    try:
        model = models.get(name)
    except NotFound:
        raise NotFound(f"collection {name} does not exist") from None
    if not features.list(owner, None, name, None, 1, None)[0]:
        raise NotFound(f"collection {name} does not exist")  # none of the caller's features
    return collection(base, name, model.description)


def as_item(feature: Feature) -> dict[str, Any]:
    identity = {
        "featureId": feature.id,
        "model": feature.model,
        "entityType": feature.entityType.value,
        "version": feature.version,
        "updatedAt": feature.updatedAt.isoformat(),
    }
    return {
        "type": "Feature",
        "id": feature.urn,
        "geometry": feature.geometry,
        "properties": {**identity, **feature.properties},
    }


def _instant(text: str, field: str) -> datetime | None:
    if text in ("", ".."):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            "datetime cannot be read", [FieldProblem(field, f"{text!r} is not an RFC 3339 date-time")]
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_filter(text: str) -> PropertyFilter:
    """``datetime`` (an instant, or an interval with ``..`` for an open end) as a CQL2 filter on
    ``updatedAt``."""
    start, _, end = text.partition("/")
    low, high = _instant(start, "datetime"), _instant(end, "datetime") if "/" in text else None
    if "/" not in text:
        if low is None:
            raise InvalidRequest(
                "datetime cannot be read", [FieldProblem("datetime", "an instant or interval")]
            )
        return parse_filter(f"updatedAt = TIMESTAMP('{low.isoformat()}')", "datetime")
    parts = [f"updatedAt >= TIMESTAMP('{low.isoformat()}')"] if low else []
    parts += [f"updatedAt <= TIMESTAMP('{high.isoformat()}')"] if high else []
    return parse_filter(" AND ".join(parts) or "updatedAt IS NOT NULL", "datetime")


def items(
    base: str,
    owner: str,
    name: str,
    features: FeatureService,
    query: dict[str, str],
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    token: str | None,
) -> dict[str, Any]:
    """A page of a collection's features; ``next`` carries the position (and the query) on."""
    where: PropertyFilter | None = None
    language = query.get("filter-lang", "cql2-text")
    if language != "cql2-text":
        problem = FieldProblem("filter-lang", f"{language!r}: only cql2-text is accepted")
        raise InvalidRequest("the filter language is not supported", [problem])
    if query.get("filter"):
        where = parse_filter(query["filter"])
    if query.get("datetime"):
        moment = time_filter(query["datetime"])
        where = moment if where is None else where.and_also(moment)
    found, next_token = features.list(owner, bbox, name, None, limit, token, where)
    href = f"{base}/collections/{quote(name, safe='')}/items"
    kept = {k: v for k, v in query.items() if k in ("bbox", "filter", "filter-lang", "datetime", "limit")}
    here = {**kept, "nextToken": token} if token else kept
    links = [
        {"rel": "self", "type": GEOJSON, "href": f"{href}?{urlencode(here)}"},
        {"rel": "collection", "type": JSON, "href": f"{base}/collections/{quote(name, safe='')}"},
    ]
    if next_token:
        links.append(
            {"rel": "next", "type": GEOJSON, "href": f"{href}?{urlencode({**kept, 'nextToken': next_token})}"}
        )
    return {
        "type": "FeatureCollection",
        "features": [as_item(feature) for feature in found],
        "numberReturned": len(found),
        "timeStamp": datetime.now(UTC).isoformat(),
        "links": links,
    }


def item(base: str, owner: str, name: str, urn: str, features: FeatureService) -> dict[str, Any]:
    feature, _ = features.get(urn, owner)
    if feature.model != name:
        raise NotFound(f"feature {urn} is not in collection {name}")
    answer = as_item(feature)
    href = f"{base}/collections/{quote(name, safe='')}"
    answer["links"] = [
        {"rel": "self", "type": GEOJSON, "href": f"{href}/items/{quote(urn, safe='')}"},
        {"rel": "collection", "type": JSON, "href": href},
    ]
    return answer
