"""Areas of interest in every form users send them, turned into one ROI FeatureCollection (pure Python).

Forms: a GeoJSON FeatureCollection, Feature or bare Polygon/MultiPolygon (EPSG:4326); WKT in EPSG:4326
(``POLYGON((...))``, ``MULTIPOLYGON(...)``, an optional ``SRID=4326;`` prefix), as CLC+ takes it; or a
country (``{"country": "France"}`` or ``"FRA"``): the country's Natural Earth boundary, exported in its
national projection. A polygon whose rings are sound but not simple (self-crossing, zero-area parts) is
repaired with GEOS' ``make_valid`` (in the geometry function: the API stays free of numpy) and the repair
is reported; anything that is not a polygon at all answers 400 with why.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import itertools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from geoexport.errors import FieldProblem, InvalidRequest, PayloadTooLarge
from geoexport.geometry import planar
from geoexport.models.geojson import (
    CountryAoi,
    MultiPolygon,
    Polygon,
    RoiFeature,
    RoiFeatureCollection,
)

#: National projections (EPSG) used for national products; other countries get the UTM zone of their
#: centroid. Sources: each national mapping agency's reference system (EPSG registry names in comments).
NATIONAL_CRS: dict[str, int] = {
    "AUT": 31287,  # MGI / Austria Lambert
    "BEL": 3812,  # ETRS89 / Belgian Lambert 2008
    "BGR": 32635,  # WGS 84 / UTM 35N (BGS2005 is UTM-based)
    "CHE": 2056,  # CH1903+ / LV95
    "CZE": 5514,  # S-JTSK / Krovak East North
    "DEU": 25832,  # ETRS89 / UTM 32N
    "DNK": 25832,  # ETRS89 / UTM 32N
    "ESP": 25830,  # ETRS89 / UTM 30N
    "EST": 3301,  # Estonian Coordinate System of 1997
    "FIN": 3067,  # ETRS89 / TM35FIN(E,N)
    "FRA": 2154,  # RGF93 v1 / Lambert-93
    "GBR": 27700,  # OSGB36 / British National Grid
    "GRC": 2100,  # GGRS87 / Greek Grid
    "HRV": 3765,  # HTRS96 / Croatia TM
    "HUN": 23700,  # HD72 / EOV
    "IRL": 2157,  # IRENET95 / Irish Transverse Mercator
    "ISL": 8088,  # ISN2016 / Lambert 2016
    "ITA": 6875,  # RDN2008 / Italy zone (N-E)
    "LTU": 3346,  # LKS94 / Lithuania TM
    "LUX": 2169,  # LUREF / Luxembourg TM
    "LVA": 3059,  # LKS-92 / Latvia TM
    "NLD": 28992,  # Amersfoort / RD New
    "NOR": 25833,  # ETRS89 / UTM 33N
    "POL": 2180,  # ETRS89 / Poland CS92
    "PRT": 3763,  # ETRS89 / Portugal TM06
    "ROU": 3844,  # Pulkovo 1942(58) / Stereo70
    "SVK": 5514,  # S-JTSK / Krovak East North
    "SVN": 3794,  # Slovenia 1996 / Slovene National Grid
    "SWE": 3006,  # SWEREF99 TM
    "USA": 5070,  # NAD83 / Conus Albers
    "CAN": 3978,  # NAD83 / Canada Atlas Lambert
    "AUS": 3577,  # GDA94 / Australian Albers
    "ISR": 2039,  # Israel 1993 / Israeli TM Grid
}

#: Parts of a country farther than this (degrees) from its largest part are left out of a national
#: product: overseas territories lie outside the national projection's area of use.
OVERSEAS_DEGREES = 10.0

Repair = Callable[[dict[str, Any]], tuple[dict[str, Any], str]]


@dataclass
class NormalisedAoi:
    roi: RoiFeatureCollection
    notes: list[str] = field(default_factory=list)  # repairs and choices made, shown on the task
    country: str | None = None  # ISO3 of a national product
    national_crs: str | None = None


# -- WKT --------------------------------------------------------------------------------------------------
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(rf"\s*(?:(?P<num>{_NUMBER})|(?P<word>[A-Za-z]+)|(?P<sym>[(),]))")


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise planar.GeometryProblem(f"unexpected {text[pos : pos + 12]!r} at character {pos}")
        tokens.append(match.group("num") or match.group("word") or match.group("sym"))
        pos = match.end()
    return tokens


class _Reader:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def take(self, expected: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise planar.GeometryProblem(f"the text ends early (expected {expected or 'more'})")
        token = self.tokens[self.i]
        if expected is not None and token.upper() != expected:
            raise planar.GeometryProblem(f"expected {expected!r}, found {token!r}")
        self.i += 1
        return token

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def ring(self) -> list[list[float]]:
        self.take("(")
        positions = []
        while True:
            numbers = []
            while self.peek() not in (",", ")", None):
                try:
                    numbers.append(float(self.take()))
                except ValueError:
                    found = self.tokens[self.i - 1]
                    raise planar.GeometryProblem(f"expected a coordinate, found {found!r}") from None
            if len(numbers) < 2:
                raise planar.GeometryProblem("each position needs a longitude and a latitude")
            positions.append(numbers[:2])
            if self.take() == ")":
                return positions

    def polygon(self) -> list[list[list[float]]]:
        self.take("(")
        rings = [self.ring()]
        while self.take() == ",":
            rings.append(self.ring())
        return rings


def wkt_to_geometry(text: str) -> dict[str, Any]:
    """``POLYGON((lon lat, ...), (...))`` or ``MULTIPOLYGON(((...)), ((...)))`` -> a GeoJSON geometry."""
    body = text.strip()
    srid = re.match(r"(?i)^SRID=(\d+);", body)
    if srid:
        if srid.group(1) != "4326":
            raise planar.GeometryProblem(f"WKT must be in EPSG:4326 (WGS84), not SRID {srid.group(1)}")
        body = body[srid.end() :]
    reader = _Reader(_tokens(body))
    kind = reader.take().upper()
    if reader.peek() and reader.peek().upper() in ("Z", "M", "ZM"):  # type: ignore[union-attr]
        reader.take()
    if reader.peek() and reader.peek().upper() == "EMPTY":  # type: ignore[union-attr]
        raise planar.GeometryProblem("the geometry is EMPTY")
    if kind == "POLYGON":
        geometry: dict[str, Any] = {"type": "Polygon", "coordinates": reader.polygon()}
    elif kind == "MULTIPOLYGON":
        reader.take("(")
        polygons = [reader.polygon()]
        while reader.take() == ",":
            polygons.append(reader.polygon())
        geometry = {"type": "MultiPolygon", "coordinates": polygons}
    else:
        raise planar.GeometryProblem(f"expected POLYGON or MULTIPOLYGON, found {kind}")
    if reader.peek() is not None:
        raise planar.GeometryProblem(f"unexpected {reader.peek()!r} after the geometry")
    return geometry


# -- countries -------------------------------------------------------------------------------------------
@functools.cache
def _countries() -> list[dict[str, Any]]:
    text = importlib.resources.files("geoexport.data").joinpath("countries.geojson").read_text()
    features: list[dict[str, Any]] = json.loads(text)["features"]
    return features


def find_country(query: str) -> dict[str, Any]:
    """A Natural Earth country by ISO 3166 alpha-3 code or name (case-insensitive)."""
    wanted = query.strip().casefold()
    for feature in _countries():
        props = feature["properties"]
        if wanted in (str(props.get("iso_a3", "")).casefold(), str(props.get("name", "")).casefold()):
            return feature
    names = [str(f["properties"]["name"]) for f in _countries()]
    close = difflib.get_close_matches(query.strip(), names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else " (a Natural Earth name or ISO 3166 alpha-3)"
    raise planar.GeometryProblem(f"unknown country {query!r}{hint}")


def _centroid(rings: planar.PolygonCoords) -> tuple[float, float]:
    shell = rings[0]
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in itertools.pairwise(shell):
        cross = x1 * y2 - x2 * y1
        area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if area == 0:
        return shell[0][0], shell[0][1]
    return cx / (3 * area), cy / (3 * area)


def utm_epsg(lon: float, lat: float) -> int:
    zone = min(60, math.floor((lon + 180.0) / 6.0) + 1)
    return (32600 if lat >= 0 else 32700) + zone


def national_territory(feature: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The country's parts near its largest one (overseas parts lie outside the national projection)."""
    polygons = planar.polygon_parts(feature["geometry"])
    largest = max(polygons, key=lambda rings: abs(planar.ring_area(rings[0])))
    minx, miny, maxx, maxy = planar.bounds_of([largest])
    kept, dropped = [], 0
    for rings in polygons:
        x0, y0, x1, y1 = planar.bounds_of([rings])
        near = (
            x1 >= minx - OVERSEAS_DEGREES
            and x0 <= maxx + OVERSEAS_DEGREES
            and y1 >= miny - OVERSEAS_DEGREES
            and y0 <= maxy + OVERSEAS_DEGREES
        )
        if near:
            kept.append([list(map(list, ring)) for ring in rings])
        else:
            dropped += 1
    notes = (
        [f"{dropped} overseas part(s) more than {OVERSEAS_DEGREES:g} degrees from the mainland left out"]
        if dropped
        else []
    )
    geometry = (
        {"type": "Polygon", "coordinates": kept[0]}
        if len(kept) == 1
        else {
            "type": "MultiPolygon",
            "coordinates": kept,
        }
    )
    return geometry, notes


def national_crs(feature: dict[str, Any], geometry: dict[str, Any]) -> int:
    iso3 = str(feature["properties"].get("iso_a3", ""))
    if iso3 in NATIONAL_CRS:
        return NATIONAL_CRS[iso3]
    largest = max(planar.polygon_parts(geometry), key=lambda rings: abs(planar.ring_area(rings[0])))
    return utm_epsg(*_centroid(largest[0:1]))


# -- normalisation ----------------------------------------------------------------------------------------
def _feature(geometry: dict[str, Any], properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties or {}}


def vertex_count(collection: RoiFeatureCollection) -> int:
    return sum(
        len(ring)
        for feature in collection.features
        for polygon in planar.polygon_parts(feature.geometry_mapping())
        for ring in polygon
    )


def check_vertices(collection: RoiFeatureCollection, max_vertices: int, field_name: str = "ROI") -> None:
    """413 over ``max_vertices``: checked before a repair (a remote call) and again after it."""
    count = vertex_count(collection)
    if count > max_vertices:
        raise PayloadTooLarge(
            f"the AoI has {count} vertices; at most {max_vertices} are accepted",
            [FieldProblem(field_name, f"{count} vertices (limit {max_vertices}); simplify it")],
        )


def normalise(
    aoi: Any, repair: Repair, field_name: str = "ROI", max_vertices: int | None = None
) -> NormalisedAoi:
    """Any AoI form -> one FeatureCollection whose polygons are valid; InvalidRequest (400) saying why.

    Over ``max_vertices`` answers 413 before any repair is attempted (a repair is a remote call)."""
    notes: list[str] = []
    country: str | None = None
    crs: str | None = None
    try:
        if isinstance(aoi, str):
            text = aoi.strip()
            if re.fullmatch(r"[A-Za-z]{3}", text):  # "FRA": a country code where WKT would go
                aoi = CountryAoi(country=text)
            else:
                features = [_feature(wkt_to_geometry(text))]
        if isinstance(aoi, CountryAoi):
            found = find_country(aoi.country)
            geometry, notes = national_territory(found)
            country = str(found["properties"]["iso_a3"])
            crs = str(national_crs(found, geometry))
            notes.insert(0, f"national product of {found['properties']['name']} ({country}), EPSG:{crs}")
            features = [_feature(geometry, {"country": country})]
        elif isinstance(aoi, RoiFeatureCollection):
            features = [f.model_dump(exclude_none=True) for f in aoi.features]
        elif isinstance(aoi, RoiFeature):
            features = [aoi.model_dump(exclude_none=True)]
        elif isinstance(aoi, Polygon | MultiPolygon):
            features = [_feature(aoi.model_dump(exclude_none=True))]
        collection = RoiFeatureCollection.model_validate({"type": "FeatureCollection", "features": features})
    except planar.GeometryProblem as error:
        unreadable = [FieldProblem(field_name, str(error))]
        raise InvalidRequest("the area of interest cannot be read", unreadable) from None
    except ValidationError as error:  # structure that is no polygon (short or open rings...)
        reason = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise InvalidRequest(
            "the area of interest cannot be read", [FieldProblem(field_name, reason)]
        ) from None
    if max_vertices is not None:
        check_vertices(collection, max_vertices, field_name)
    repaired = []
    for index, feature in enumerate(collection.features):
        problem = feature.geometry.topology_problem()
        if problem is None:
            repaired.append(feature)
            continue
        try:
            geometry, how = repair(feature.geometry_mapping())
        except planar.GeometryProblem as failure:
            raise InvalidRequest(
                "the area of interest cannot be repaired",
                [FieldProblem(f"{field_name}.features[{index}].geometry", f"{problem}; {failure}")],
            ) from None
        notes.append(f"features[{index}]: {problem}; {how}")
        repaired.append(
            feature.model_copy(
                update={
                    "geometry": RoiFeature.model_validate(
                        {"type": "Feature", "geometry": geometry, "properties": {}}
                    ).geometry
                }
            )
        )
    roi = collection.model_copy(update={"features": repaired})
    return NormalisedAoi(roi=roi, notes=notes, country=country, national_crs=crs)
