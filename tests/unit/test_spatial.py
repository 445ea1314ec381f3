"""The feature index against a brute-force shapely filter over Natural Earth cities and countries."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import shapely
from shapely.geometry import shape

from geoexport.features import spatial
from tests.support import ROOT

DATA = ROOT / "tests" / "data"


def features() -> dict[str, dict[str, object]]:
    found = {}
    for path in (DATA / "cities.geojson", ROOT / "layers" / "geoexport" / "data" / "countries.geojson"):
        name = path.name
        for index, feature in enumerate(json.loads(path.read_text())["features"]):
            found[f"{name}:{index}"] = feature["geometry"]
    return found


def test_index_and_exact_filter_match_shapely() -> None:
    geometries = features()
    table: dict[str, list[tuple[str, spatial.Bounds]]] = defaultdict(list)  # what the DynamoDB index holds
    for key, geometry in geometries.items():
        for pk, sk in spatial.index_keys("owner", key, geometry):
            table[pk].append((sk, spatial.parse_box(spatial.box_text(spatial.bounds_of(geometry)))))
    for entries in table.values():
        entries.sort()
    rng = random.Random(7)
    boxes = [(-180.0, -90.0, 180.0, 90.0), (5.0, 45.0, 15.0, 55.0), (-0.2, 51.4, 0.1, 51.6)]
    for _ in range(60):
        x, y = rng.uniform(-180, 170), rng.uniform(-90, 80)
        w, h = (
            rng.choice([0.5, 3.0, 20.0, 90.0]) * rng.random(),
            rng.choice([0.5, 3.0, 20.0, 60.0]) * rng.random(),
        )
        boxes.append((x, y, min(180.0, x + w), min(90.0, y + h)))
    total = sum(len(entries) for entries in table.values())
    for box in boxes:
        plan = spatial.query_plan("owner", box)
        reported, read = [], 0
        for step in plan.steps:
            for sk, found in table.get(step.pk, []):
                if step.low <= sk <= step.high:
                    read += 1
                    cell, key = sk.split("#", 1)
                    if spatial.boxes_meet(found, box) and plan.first_read(cell, found):
                        reported.append(key)
        assert len(reported) == len(set(reported)), box  # each feature once, whatever cells it spans
        found_exactly = {k for k in reported if spatial.intersects(geometries[k], box)}
        area = shapely.box(*box)
        expected = {k for k, g in geometries.items() if area.intersects(shape(g))}
        assert found_exactly == expected, (box, sorted(found_exactly ^ expected)[:5])
        if box == (-0.2, 51.4, 0.1, 51.6):  # London: a handful of entries, not the repository
            assert read < total / 20, (read, total)
    world = spatial.query_plan("owner", (-180.0, -90.0, 180.0, 90.0))
    # One key range per partition and level, each the whole partition.
    assert len(world.steps) == 32 * spatial.MAX_LEVEL
    assert all(step.low == step.pk[-1] and step.high == step.pk[-1] + "~" for step in world.steps)


def test_plan_reads_are_bounded_by_the_box() -> None:
    """Each level reads at most MAX_QUERY_CELLS covering cells (plus the few between them it reads through),
    merged into key ranges in Z order."""
    for box in [(10.0, 50.0, 11.0, 51.0), (-10.0, 35.0, 30.0, 70.0), (179.5, -1.0, 180.0, 1.0)]:
        plan = spatial.query_plan("o", box)
        for level in range(1, spatial.MAX_LEVEL + 1):
            cells = plan.prefixes[level]
            assert len(cells) <= spatial.MAX_QUERY_CELLS * (spatial.MAX_GAP + 1)
            width = len(next(iter(cells)))
            assert set(spatial.cover(box, width)) <= cells
            steps = [s for s in plan.steps if s.level == level]
            assert 1 <= len(steps) <= len(cells)
            # Every covering cell lies in exactly one key range of its partition.
            for cell in cells:
                assert sum(s.low <= cell <= s.high and s.pk.endswith(cell[0]) for s in steps) == 1
        one_degree = spatial.query_plan("o", (10.0, 50.0, 11.0, 51.0))
        fine = one_degree.prefixes[spatial.MAX_LEVEL]
        assert len(next(iter(fine))) >= 3  # a 1-degree box is read through cells of ~1.4 degrees at most
