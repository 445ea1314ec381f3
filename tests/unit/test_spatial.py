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
    table: dict[str, list[str]] = defaultdict(list)  # what the DynamoDB index holds
    for key, geometry in geometries.items():
        for pk, sk in spatial.index_keys("owner", key, geometry):
            table[pk].append(sk)
    rng = random.Random(7)
    boxes = [(-180.0, -90.0, 180.0, 90.0), (5.0, 45.0, 15.0, 55.0), (-0.2, 51.4, 0.1, 51.6)]
    for _ in range(60):
        x, y = rng.uniform(-180, 170), rng.uniform(-90, 80)
        w, h = (
            rng.choice([0.5, 3.0, 20.0, 90.0]) * rng.random(),
            rng.choice([0.5, 3.0, 20.0, 60.0]) * rng.random(),
        )
        boxes.append((x, y, min(180.0, x + w), min(90.0, y + h)))
    for box in boxes:
        candidates = set()
        for pk, prefix in spatial.query_plan("owner", box):
            candidates |= {sk.split("#", 2)[2] for sk in table.get(pk, []) if sk.startswith(prefix or "")}
        found = {k for k in candidates if spatial.intersects(geometries[k], box)}
        area = shapely.box(*box)
        expected = {k for k, g in geometries.items() if area.intersects(shape(g))}
        assert found == expected, (box, sorted(found ^ expected)[:5])
    world = spatial.query_plan("owner", (-180.0, -90.0, 180.0, 90.0))
    assert len(world) == 32 and all(prefix is None for _, prefix in world)  # one query per partition
