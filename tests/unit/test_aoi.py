"""Every AoI form becomes one valid FeatureCollection; what cannot be read or repaired says why (400)."""

from __future__ import annotations

from typing import Any

import pytest

from geoexport.errors import InvalidRequest
from geoexport.geometry import aoi
from geoexport.geometry.planar import GeometryProblem
from geoexport.geometry.repair import repair
from geoexport.models.geojson import CountryAoi, Polygon, RoiFeature, RoiFeatureCollection

SQUARE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
BOWTIE = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]


def no_repair(geometry: dict[str, Any]) -> tuple[dict[str, Any], str]:
    raise AssertionError("nothing here needs a repair")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))", {"type": "Polygon", "coordinates": [SQUARE]}),
        ("srid=4326;polygon ((0 0,1 0,1 1,0 1,0 0))", {"type": "Polygon", "coordinates": [SQUARE]}),
        ("POLYGON Z((0 0 5, 1 0 5, 1 1 5, 0 1 5, 0 0 5))", {"type": "Polygon", "coordinates": [SQUARE]}),
        (
            "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 1, 0 0)), ((2 2, 3 2, 3 3, 2 2)))",
            {
                "type": "MultiPolygon",
                "coordinates": [[SQUARE], [[[2.0, 2.0], [3.0, 2.0], [3.0, 3.0], [2.0, 2.0]]]],
            },
        ),
    ],
)
def test_wkt_reads_polygons(text: str, expected: dict[str, Any]) -> None:
    assert aoi.wkt_to_geometry(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("POINT(1 2)", "expected POLYGON or MULTIPOLYGON"),
        ("POLYGON EMPTY", "EMPTY"),
        ("POLYGON((0 0, 1 0, 1 1", "ends early"),
        ("POLYGON((0 0, 1 x, 1 1, 0 0))", "expected a coordinate"),
        ("SRID=3857;POLYGON((0 0, 1 0, 1 1, 0 0))", "EPSG:4326"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0)) trailing", "after the geometry"),
    ],
)
def test_wkt_errors_say_why(text: str, reason: str) -> None:
    with pytest.raises(GeometryProblem, match=reason):
        aoi.wkt_to_geometry(text)


def test_every_form_becomes_the_same_collection() -> None:
    polygon = {"type": "Polygon", "coordinates": [SQUARE]}
    forms = [
        RoiFeatureCollection.model_validate(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": polygon}]}
        ),
        RoiFeature.model_validate({"type": "Feature", "geometry": polygon}),
        Polygon.model_validate(polygon),
        "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))",
    ]
    results = [aoi.normalise(form, no_repair).roi.model_dump(exclude_none=True) for form in forms]
    assert all(result == results[0] for result in results)
    assert results[0]["features"][0]["geometry"] == polygon


def test_countries_by_code_or_name_in_their_national_projection() -> None:
    for query, iso3, epsg in [("FRA", "FRA", "2154"), ("germany", "DEU", "25832"), ("Spain", "ESP", "25830")]:
        result = aoi.normalise(CountryAoi(country=query), no_repair)
        assert (result.country, result.national_crs) == (iso3, epsg)
        assert result.roi.features[0].properties.model_extra == {"country": iso3}
    france = aoi.normalise(CountryAoi(country="France"), no_repair)
    assert any("overseas" in note for note in france.notes)  # French Guiana is not Lambert-93's
    assert aoi.normalise("NLD", no_repair).national_crs == "28992"  # a bare ISO3 where WKT would go
    # No national table entry: the UTM zone of the country's centroid (Kenya straddles the equator).
    kenya = aoi.normalise(CountryAoi(country="Kenya"), no_repair)
    assert kenya.national_crs in ("32637", "32737")
    with pytest.raises(InvalidRequest) as unknown:
        aoi.normalise(CountryAoi(country="Frnace"), no_repair)
    assert "did you mean France" in unknown.value.problems[0].reason


def test_a_self_crossing_polygon_is_repaired_and_reported() -> None:
    result = aoi.normalise(Polygon.model_validate({"type": "Polygon", "coordinates": [BOWTIE]}), repair)
    geometry = result.roi.features[0].geometry
    assert geometry.type == "MultiPolygon" and len(geometry.coordinates) == 2
    assert geometry.topology_problem() is None
    assert "self-intersects" in result.notes[0] and "make_valid into 2 polygon(s)" in result.notes[0]


def test_what_cannot_be_repaired_answers_400_with_why() -> None:
    flat = [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]  # no area at all
    with pytest.raises(InvalidRequest) as refused:
        aoi.normalise(Polygon.model_validate({"type": "Polygon", "coordinates": [flat]}), repair)
    problem = refused.value.problems[0]
    assert problem.field == "ROI.features[0].geometry" and "nothing with an area" in problem.reason
    with pytest.raises(InvalidRequest) as unreadable:
        aoi.normalise("LINESTRING(0 0, 1 1)", repair)
    assert unreadable.value.problems[0].field == "ROI"


def test_a_bare_iso3_code_is_a_country_in_the_request_too() -> None:
    from geoexport.models import CreateExportTaskRequest

    request = CreateExportTaskRequest.model_validate(
        {"catalogRecordID": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "domain": "RASTER", "ROI": "FRA"}
    )
    assert aoi.normalise(request.ROI, no_repair).country == "FRA"


def test_too_many_vertices_is_refused_before_any_repair() -> None:
    from geoexport.errors import PayloadTooLarge

    zigzag = [[float(i % 2), i / 10] for i in range(30)] + [[5.0, 0.0], [0.0, 0.0]]  # crosses itself
    with pytest.raises(PayloadTooLarge):
        aoi.normalise(
            Polygon.model_validate({"type": "Polygon", "coordinates": [zigzag]}), no_repair, max_vertices=20
        )
