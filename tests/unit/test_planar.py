"""Pure-Python polygon checks agree with GEOS (shapely) on valid/invalid and on intersects."""

import random

import pytest
import shapely
from shapely.geometry import Polygon, shape

from geoexport.geometry import planar


def square(x: float, y: float, size: float) -> list[list[list[float]]]:
    return [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]


@pytest.mark.parametrize(
    ("rings", "reason"),
    [
        ([[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]], "self-intersects"),
        ([[[0, 0], [1, 0], [1, 1], [0, 1]]], "open"),
        ([[[0, 0], [1, 0], [0, 0]]], "at least 4"),
        ([[[0, 0], [181, 0], [1, 1], [0, 0]]], "longitude 181"),
        ([[[0, 0], [1, 0], [1, 91], [0, 0]]], "latitude 91"),
        ([[[0, 0], [1, 0], [2, 0], [0, 0]]], "self-intersects|zero area"),
        ([square(0, 0, 1)[0], square(5, 5, 1)[0]], "outside the outer ring"),
        ([square(0, 0, 4)[0], [[1, 1], [5, 1], [5, 2], [1, 2], [1, 1]]], "cross"),
        ([[[0, 0], [2, 0], [2, 2], [1, 2], [1, -1], [0, 0]]], "self-intersects"),
    ],
)
def test_invalid_polygons_are_refused_with_a_reason(rings: list, reason: str) -> None:
    with pytest.raises(planar.GeometryProblem, match=reason):
        planar.validate_polygon(rings)


def test_a_hole_inside_its_shell_passes_and_one_outside_is_refused() -> None:
    shell, hole = square(0, 0, 4)[0], [[1, 1], [1, 2], [2, 2], [2, 1], [1, 1]]
    assert Polygon(shell, [hole]).is_valid  # GEOS agrees it is valid
    assert planar.validate_polygon([shell, hole]) is None
    outside = [[x + 10, y] for x, y in hole]
    assert not Polygon(shell, [outside]).is_valid
    with pytest.raises(planar.GeometryProblem):
        planar.validate_polygon([shell, outside])


def _random_ring(rng: random.Random, n: int) -> list[list[float]]:
    points = [[round(rng.uniform(-10, 10), 3), round(rng.uniform(-10, 10), 3)] for _ in range(n)]
    return [*points, points[0]]


def test_validity_agrees_with_geos_on_random_rings() -> None:
    rng = random.Random(7)
    agreed = 0
    for _ in range(400):
        ring = _random_ring(rng, rng.randint(3, 9))
        ours = True
        try:
            planar.validate_polygon([ring])
        except planar.GeometryProblem:
            ours = False
        geos = Polygon(ring).is_valid and Polygon(ring).area > 0
        assert ours == geos, ring
        agreed += 1
    assert agreed == 400


def test_intersects_agrees_with_geos_on_random_pairs() -> None:
    rng = random.Random(11)
    tested = 0
    while tested < 300:
        a, b = _random_ring(rng, rng.randint(3, 7)), _random_ring(rng, rng.randint(3, 7))
        if not (Polygon(a).is_valid and Polygon(b).is_valid):
            continue
        geometry_a = {"type": "Polygon", "coordinates": [a]}
        geometry_b = {"type": "Polygon", "coordinates": [b]}
        assert planar.geometries_intersect(geometry_a, geometry_b) == shape(geometry_a).intersects(
            shape(geometry_b)
        )
        tested += 1


def test_far_apart_polygons_do_not_intersect_and_nested_ones_do() -> None:
    outer = {"type": "Polygon", "coordinates": square(0, 0, 10)}
    inner = {"type": "Polygon", "coordinates": square(4, 4, 1)}
    far = {"type": "MultiPolygon", "coordinates": [square(50, 50, 1)]}
    assert planar.geometries_intersect(outer, inner)
    assert planar.geometries_intersect(inner, outer)
    assert not planar.geometries_intersect(outer, far)
    assert shapely.intersects(shape(outer), shape(inner))


def test_no_shipped_country_is_taken_for_an_antimeridian_crossing() -> None:
    """Natural Earth splits at +-180 (Fiji, Russia) and closes Antarctica along the pole: none is refused."""
    import json
    from pathlib import Path

    from geoexport.geometry.planar import antimeridian_crossing

    countries = json.loads(
        (Path(__file__).parents[2] / "layers/geoexport/data/countries.geojson").read_text()
    )
    assert [
        f["properties"]["iso_a3"] for f in countries["features"] if antimeridian_crossing(f["geometry"])
    ] == []
    drawn_across = {"type": "Polygon", "coordinates": [[[170, 0], [-170, 0], [-170, 5], [170, 5], [170, 0]]]}
    assert antimeridian_crossing(drawn_across) is not None
